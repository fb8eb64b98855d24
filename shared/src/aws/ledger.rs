//! Which deliveries were already accepted: one S3 object per delivery id,
//! created with `If-None-Match: *` so that of two attempts at the same id
//! exactly one wins, without any database.
//!
//! GitHub keeps the delivery id on a redelivery, so a redelivered delivery
//! finds its marker and publishes nothing. If publishing fails after the
//! claim, the marker is released so the user's redelivery can go through.

use super::records::{RecordError, Records};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time this delivery is seen: go on and publish.
    New,
    /// Already accepted (or being accepted right now by another request).
    Duplicate,
}

/// An S3 failure on the ledger, with bucket and key.
pub type LedgerError = RecordError;

pub struct DeliveryLedger {
    records: Records,
}

impl DeliveryLedger {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        DeliveryLedger {
            records: Records::new(s3, bucket),
        }
    }

    fn key(delivery_id: &str) -> String {
        format!("deliveries/{delivery_id}")
    }

    /// Records `delivery_id` unless it is already recorded.
    pub async fn claim(&self, delivery_id: &str, what: &str) -> Result<Claim, LedgerError> {
        let marker = serde_json::json!({ "delivery_id": delivery_id, "published": what });
        let created = self
            .records
            .create_json(&Self::key(delivery_id), &marker)
            .await?;
        Ok(if created {
            Claim::New
        } else {
            Claim::Duplicate
        })
    }

    /// Forgets `delivery_id`, after a claim whose publish failed.
    pub async fn release(&self, delivery_id: &str) -> Result<(), LedgerError> {
        self.records.delete(&Self::key(delivery_id)).await
    }
}
