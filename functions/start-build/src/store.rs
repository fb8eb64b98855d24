//! What start-build remembers, in the artifact bucket: one start record per
//! (delivery, project), and the builds of each branch or pull request.
//!
//! S3 is strongly consistent and supports `If-None-Match: *`, which is all
//! "start once" and "the newest build wins" need; no database.

use gantry_aws::records::{RecordError, Records};
use gantry_core::events::BuildSource;
use gantry_core::ids::{BuildArn, BuildId, CorrelationId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An S3 failure, with the bucket and key.
pub type StoreError = RecordError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartState {
    /// Claimed; StartBuild not known to have succeeded.
    Starting,
    Started,
    /// A newer commit of the group came first; never started.
    Superseded,
    /// CodeBuild refused for good.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRecord {
    pub state: StartState,
    pub correlation_id: CorrelationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<BuildId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_arn: Option<BuildArn>,
    /// `Build Started` was published.
    #[serde(default)]
    pub announced: bool,
}

/// A build of a group (one branch or pull request), as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    pub token: String,
    /// Empty until CodeBuild names the build.
    pub build_id: BuildId,
    pub correlation_id: CorrelationId,
    pub received_at_ms: u64,
    pub source: BuildSource,
}

pub enum Claimed {
    New,
    Existing(StartRecord),
}

/// The token that makes a start happen once: derived from the delivery id
/// and the project, 32 hex digits (CodeBuild takes up to 64 characters).
pub fn start_token(correlation_id: &str, project: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"gantry-start\n");
    h.update(correlation_id.as_bytes());
    h.update(b"\n");
    h.update(project.as_bytes());
    gantry_core::hex::encode(&h.finalize()[..16])
}

/// The S3 prefix of a group's entries.
pub fn group_prefix(project: &str, group: &str) -> String {
    let mut h = Sha256::new();
    h.update(project.as_bytes());
    h.update(b"\n");
    h.update(group.as_bytes());
    format!("groups/{}/", gantry_core::hex::encode(&h.finalize()[..16]))
}

/// Entry keys sort by [`BuildSource::order`]: the time GitHub signed into
/// the delivery, then the time the webhook received it.
fn entry_key(prefix: &str, entry: &GroupEntry) -> String {
    let (signed, received) = entry.source.order();
    format!("{prefix}{signed:013}-{received:013}-{}.json", entry.token)
}

pub struct Store {
    records: Records,
}

impl Store {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Store {
            records: Records::new(s3, bucket),
        }
    }

    pub fn bucket(&self) -> &str {
        self.records.bucket()
    }

    fn start_key(token: &str) -> String {
        format!("starts/{token}.json")
    }

    /// Creates the start record unless one exists; then returns that one.
    pub async fn claim(&self, token: &str, record: &StartRecord) -> Result<Claimed, StoreError> {
        let key = Self::start_key(token);
        if self.records.create_json(&key, record).await? {
            return Ok(Claimed::New);
        }
        match self.records.get_json(&key).await? {
            Some(existing) => Ok(Claimed::Existing(existing)),
            // Claimed by a request still writing it: let EventBridge retry.
            None => Err(StoreError {
                bucket: self.bucket().to_owned(),
                key,
                reason: "claimed by a concurrent start still in flight".into(),
            }),
        }
    }

    pub async fn record(&self, token: &str, record: &StartRecord) -> Result<(), StoreError> {
        self.records.put_json(&Self::start_key(token), record).await
    }

    /// Forgets a claim whose start failed, so the retry starts afresh.
    pub async fn release(&self, token: &str) -> Result<(), StoreError> {
        self.records.delete(&Self::start_key(token)).await
    }

    pub async fn register(&self, prefix: &str, entry: &GroupEntry) -> Result<(), StoreError> {
        self.records
            .put_json(&entry_key(prefix, entry), entry)
            .await
    }

    /// The group's builds, oldest first, with their keys. An entry deleted
    /// between the listing and the read was dealt with by another start.
    pub async fn group(&self, prefix: &str) -> Result<Vec<(String, GroupEntry)>, StoreError> {
        let mut out = Vec::new();
        for key in self.records.keys(prefix).await? {
            if let Some(entry) = self.records.get_json::<GroupEntry>(&key).await? {
                out.push((key, entry));
            }
        }
        Ok(out)
    }

    pub async fn forget(&self, key: &str) -> Result<(), StoreError> {
        self.records.delete(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_per_delivery_and_project() {
        let a = start_token("72d3162e-cc78-11e3-81ab-4c9367dc0958", "gantry-build");
        assert_eq!(a.len(), 32);
        assert_eq!(
            a,
            start_token("72d3162e-cc78-11e3-81ab-4c9367dc0958", "gantry-build")
        );
        assert_ne!(
            a,
            start_token("72d3162e-cc78-11e3-81ab-4c9367dc0958", "other")
        );
        assert_ne!(
            a,
            start_token("72d3162e-cc78-11e3-81ab-4c9367dc0959", "gantry-build")
        );
    }

    #[test]
    fn group_entries_sort_by_the_signed_time_then_the_arrival() {
        let prefix = group_prefix("p", "octo-org/widgets#pr/7");
        let entry = |signed: u64, received: u64, token: &str| GroupEntry {
            token: token.into(),
            build_id: "p:1".into(),
            correlation_id: "c".into(),
            received_at_ms: received,
            source: serde_json::from_value(serde_json::json!({
                "trigger": "push", "repository": {"full_name": "a/b", "owner": "a", "name": "b",
                "clone_url": "", "html_url": "", "private": false},
                "commit_sha": "", "git_ref": "", "fork": false,
                "changed_paths": {"paths": [], "truncated": false},
                "signed_at_ms": signed, "received_at_ms": received
            }))
            .expect("a minimal source"),
        };
        let older = entry_key(&prefix, &entry(5_000, 999, "ffff"));
        let newer = entry_key(&prefix, &entry(5_000, 1_000, "0000"));
        assert!(older < newer, "{older} {newer}");
        // A replay arrives last but was signed first: it sorts first.
        let replay = entry_key(&prefix, &entry(4_000, 9_999_999, "aaaa"));
        assert!(replay < older, "{replay} {older}");
    }
}
