//! Which deliveries were already accepted, without any database: two
//! claims per delivery in S3 (see [`Records::acquire_key`]), one on the
//! delivery id and one on a digest of the signed body.
//!
//! GitHub keeps both on a redelivery, so a redelivered delivery finds its
//! claims done and publishes nothing. The delivery id is not signed: anyone
//! holding one signed body (a repository admin sees them under Recent
//! Deliveries) could resend it under fresh ids, each a new build; the body's
//! claim stops that. Each claim carries its holder's deadline, so a webhook
//! killed between claim and publication (a timeout) does not turn the user's
//! redelivery into a "duplicate" forever: once the deadline has passed, the
//! redelivery takes the claim over. If publishing fails, both claims are
//! released so the redelivery goes through at once.

use sha2::{Digest, Sha256};

use super::records::{Acquired, Lease, RecordError, Records};
use gantry_core::records::Holder;

/// A delivery claimed by this request: publish, then [`DeliveryLedger::complete`].
#[derive(Debug)]
pub struct Claimed {
    delivery: Lease,
    body: Lease,
}

#[derive(Debug)]
pub enum Claim {
    /// First time this delivery (and this body) is seen: go on and publish.
    New(Claimed),
    /// Already accepted, or being accepted right now by another request.
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

    fn delivery_key(delivery_id: &str) -> String {
        format!("deliveries/{delivery_id}")
    }

    /// Under `deliveries/` too: the same permission and the same lifetime.
    fn body_key(digest: &str) -> String {
        format!(
            "deliveries/body-{}",
            digest.strip_prefix("sha256:").unwrap_or(digest)
        )
    }

    /// Claims `delivery_id` and `digest` (see [`body_digest`]) for `holder`,
    /// unless either is claimed already.
    pub async fn claim(
        &self,
        delivery_id: &str,
        digest: &str,
        holder: &Holder,
    ) -> Result<Claim, LedgerError> {
        let (delivery_key, body_key) = (Self::delivery_key(delivery_id), Self::body_key(digest));
        // One key after the other, always the delivery's first. Taken side
        // by side, two sends of one delivery (GitHub's redelivery racing
        // the original) could each win one key, each give it back as a
        // duplicate, and the delivery would never be published.
        let delivery = match self.records.acquire_key(&delivery_key, holder).await? {
            Acquired::Won(lease) => lease,
            Acquired::Busy { .. } | Acquired::Done => return Ok(Claim::Duplicate),
        };
        match self.records.acquire_key(&body_key, holder).await {
            Ok(Acquired::Won(body)) => Ok(Claim::New(Claimed { delivery, body })),
            // Give back what this request won: it publishes nothing.
            Ok(Acquired::Busy { .. } | Acquired::Done) => {
                self.records.release(delivery).await?;
                Ok(Claim::Duplicate)
            }
            Err(e) => {
                if let Err(release) = self.records.release(delivery).await {
                    tracing::warn!(error = %release, "could not give back the delivery's claim");
                }
                Err(e)
            }
        }
    }

    /// Marks the delivery accepted for good, after it was published.
    pub async fn complete(&self, claimed: Claimed, holder: &Holder) -> Result<(), LedgerError> {
        let (a, b) = tokio::join!(
            self.records.complete(claimed.delivery, holder),
            self.records.complete(claimed.body, holder),
        );
        a.and(b)
    }

    /// Forgets the delivery, after a claim whose publish failed.
    pub async fn release(&self, claimed: Claimed) -> Result<(), LedgerError> {
        let (a, b) = tokio::join!(
            self.records.release(claimed.delivery),
            self.records.release(claimed.body),
        );
        a.and(b)
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
