//! Which deliveries were already accepted: one S3 object per delivery id,
//! created with `If-None-Match: *` so that of two attempts at the same id
//! exactly one wins, without any database.
//!
//! GitHub keeps the delivery id on a redelivery, so a redelivered delivery
//! finds its marker and publishes nothing. If publishing fails after the
//! claim, the marker is released so the user's redelivery can go through.

use super::{describe_sdk_error, http_status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time this delivery is seen: go on and publish.
    New,
    /// Already accepted (or being accepted right now by another request).
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
#[error("delivery ledger s3://{bucket}/{key}: {reason}")]
pub struct LedgerError {
    pub bucket: String,
    pub key: String,
    pub reason: String,
}

pub struct DeliveryLedger {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl DeliveryLedger {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        DeliveryLedger {
            s3,
            bucket: bucket.into(),
            prefix: "deliveries/".into(),
        }
    }

    fn key(&self, delivery_id: &str) -> String {
        format!("{}{delivery_id}", self.prefix)
    }

    /// Records `delivery_id` unless it is already recorded.
    pub async fn claim(&self, delivery_id: &str, what: &str) -> Result<Claim, LedgerError> {
        let key = self.key(delivery_id);
        let body = serde_json::json!({ "delivery_id": delivery_id, "published": what }).to_string();
        let result = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/json")
            .body(body.into_bytes().into())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::New),
            // 412: the object exists. 409: a concurrent conditional write
            // to the same key is in flight; the other request owns it.
            Err(e) if matches!(http_status(&e), Some(412 | 409)) => Ok(Claim::Duplicate),
            Err(e) => Err(LedgerError {
                bucket: self.bucket.clone(),
                key,
                reason: describe_sdk_error(&e),
            }),
        }
    }

    /// Forgets `delivery_id`, after a claim whose publish failed.
    pub async fn release(&self, delivery_id: &str) -> Result<(), LedgerError> {
        let key = self.key(delivery_id);
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| LedgerError {
                bucket: self.bucket.clone(),
                key,
                reason: describe_sdk_error(&e),
            })
    }
}
