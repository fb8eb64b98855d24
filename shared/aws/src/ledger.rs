//! Which deliveries were already accepted, without any database: one claim
//! per delivery in S3 (see [`Records::acquire_key`]), on a digest of the
//! signed body, held in the delivery id's name.
//!
//! GitHub keeps the body on a redelivery, so a redelivered delivery finds
//! its claim done and publishes nothing. The delivery id is not signed:
//! anyone holding one signed body (a repository admin sees them under
//! Recent Deliveries) could resend it under fresh ids, each a new build;
//! keyed by the body, the claim stops that too, so a claim on the delivery
//! id would add a request and stop nothing more (start-build's record is
//! keyed by the delivery id besides). The claim carries its holder's
//! deadline, so a webhook killed between claim and publication (a timeout)
//! does not turn the user's redelivery into a "duplicate" forever: once the
//! deadline has passed, the redelivery takes the claim over. If publishing
//! fails, the claim is released so the redelivery goes through at once.

use sha2::{Digest, Sha256};

use super::records::{Acquired, Lease, RecordError, Records};
use gantry_core::records::Holder;

/// A delivery claimed by this request: publish, then [`DeliveryLedger::complete`].
#[derive(Debug)]
pub struct Claimed(Lease);

#[derive(Debug)]
pub enum Claim {
    /// First time this body is seen: go on and publish.
    New(Claimed),
    /// Already accepted, or being accepted right now by another request
    /// (a redelivery, or the same body under another delivery id).
    Duplicate,
}

/// An S3 failure on the ledger, with bucket and key.
pub type LedgerError = RecordError;

pub struct DeliveryLedger {
    records: Records,
}

/// `sha256:<hex>` of a delivery's exact bytes.
pub fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", gantry_core::hex::encode(&Sha256::digest(body)))
}

impl DeliveryLedger {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        DeliveryLedger {
            records: Records::new(s3, bucket),
        }
    }

    /// Under `deliveries/`, the name it had when a delivery also claimed
    /// `deliveries/<id>`: a bucket's earlier claims still count.
    fn body_key(digest: &str) -> String {
        format!(
            "deliveries/body-{}",
            digest.strip_prefix("sha256:").unwrap_or(digest)
        )
    }

    /// Claims the body whose [`body_digest`] is `digest` for `holder` (whose
    /// id is the delivery id, recorded in the claim), unless it is claimed
    /// already.
    pub async fn claim(&self, digest: &str, holder: &Holder) -> Result<Claim, LedgerError> {
        match self
            .records
            .acquire_key(&Self::body_key(digest), holder)
            .await?
        {
            Acquired::Won(lease) => Ok(Claim::New(Claimed(lease))),
            Acquired::Busy { .. } | Acquired::Done => Ok(Claim::Duplicate),
        }
    }

    /// Marks the delivery accepted for good, after it was published.
    pub async fn complete(&self, claimed: Claimed, holder: &Holder) -> Result<(), LedgerError> {
        self.records.complete(claimed.0, holder).await
    }

    /// Forgets the delivery, after a claim whose publish failed.
    pub async fn release(&self, claimed: Claimed) -> Result<(), LedgerError> {
        self.records.release(claimed.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_of_the_exact_bytes() {
        assert_eq!(
            body_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(body_digest(b"{}"), body_digest(b"{} "));
        assert_eq!(
            DeliveryLedger::body_key(&body_digest(b"")),
            "deliveries/body-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
