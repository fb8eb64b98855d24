//! What Gantry remembers about builds, in the artifact bucket: one JSON
//! record per build (written when it starts, completed when it ends), the
//! effects already carried out (a status posted, a message sent), and the
//! last result of each branch or pull request. S3 is strongly consistent
//! and supports `If-None-Match: *`: "exactly once" needs nothing more.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{describe_sdk_error, http_status};
use crate::events::{BuildSource, SecretRef, SupersededBy};

#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {reason}")]
pub struct RecordError {
    pub bucket: String,
    pub key: String,
    pub reason: String,
}

/// One phase of a finished build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
}

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// CodeBuild's `buildStatus`: SUCCEEDED, FAILED, FAULT, STOPPED, TIMED_OUT.
    pub status: String,
    pub finished_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTiming>,
    /// The pushed image (`IMAGE_URI`, exported by buildspecs/docker.yml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
}

/// `builds/<project>/<uuid>.json`: one build, from start to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub v: u32,
    pub build_id: String,
    pub build_arn: String,
    pub project: String,
    pub correlation_id: String,
    pub source: BuildSource,
    pub build_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_url: Option<String>,
    pub trusted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Finished>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<SupersededBy>,
}

/// The record's key for a build id (`project:uuid`, or its ARN).
pub fn build_key(build_id: &str) -> String {
    let id = build_id
        .rsplit_once(":build/")
        .map_or(build_id, |(_, id)| id);
    let (project, uuid) = id.split_once(':').unwrap_or(("unknown", id));
    format!("builds/{project}/{uuid}.json")
}

fn hex16(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(32);
    for b in &hash[..16] {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// The last result of one branch or pull request, for "fixed" and
/// "changes" notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResult {
    pub result: String,
    pub build_id: String,
    pub commit_sha: String,
}

pub struct Records {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Records {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Records {
            s3,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn error(&self, key: &str, reason: String) -> RecordError {
        RecordError {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            reason,
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        cache_control: Option<&str>,
        only_if_new: bool,
    ) -> Result<bool, RecordError> {
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_cache_control(cache_control.map(str::to_owned))
            .body(body.into());
        if only_if_new {
            put = put.if_none_match("*");
        }
        match put.send().await {
            Ok(_) => Ok(true),
            // 412: it exists. 409: a concurrent conditional write to the
            // same key is in flight; the other request owns it.
            Err(e) if only_if_new && matches!(http_status(&e), Some(412 | 409)) => Ok(false),
            Err(e) => Err(self.error(key, describe_sdk_error(&e))),
        }
    }

    /// Writes `value` as JSON at `key`.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), RecordError> {
        let body = serde_json::to_vec(value).map_err(|e| self.error(key, e.to_string()))?;
        self.put(key, body, "application/json", None, false)
            .await
            .map(|_| ())
    }

    /// Writes `value` at `key` unless something is there: `true` if written.
    pub async fn create_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<bool, RecordError> {
        let body = serde_json::to_vec(value).map_err(|e| self.error(key, e.to_string()))?;
        self.put(key, body, "application/json", None, true).await
    }

    /// The JSON at `key`; `None` if there is none.
    pub async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, RecordError> {
        let Some(text) = super::artifacts::get_text(&self.s3, &self.bucket, key)
            .await
            .map_err(|e| self.error(key, e.reason))?
        else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| self.error(key, format!("unreadable: {e}")))
    }

    pub async fn delete(&self, key: &str) -> Result<(), RecordError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error(key, describe_sdk_error(&e)))
    }

    /// The keys under `prefix`, sorted.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, RecordError> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, describe_sdk_error(&e)))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    pub async fn put_build(&self, record: &BuildRecord) -> Result<(), RecordError> {
        self.put_json(&build_key(&record.build_id), record).await
    }

    pub async fn build(&self, build_id: &str) -> Result<Option<BuildRecord>, RecordError> {
        self.get_json(&build_key(build_id)).await
    }

    fn effect_key(effect: &str) -> String {
        format!("effects/{}", hex16(effect))
    }

    /// Claims an effect (`status/<build>/final`, `notify/…`): `true` the
    /// first time, `false` once claimed by anyone.
    pub async fn claim(&self, effect: &str) -> Result<bool, RecordError> {
        let key = Self::effect_key(effect);
        self.put(&key, effect.as_bytes().to_vec(), "text/plain", None, true)
            .await
    }

    /// Is the effect claimed?
    pub async fn claimed(&self, effect: &str) -> Result<bool, RecordError> {
        let key = Self::effect_key(effect);
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if http_status(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.error(&key, describe_sdk_error(&e))),
        }
    }

    /// Gives an effect back after it failed, so a retry carries it out.
    pub async fn release(&self, effect: &str) -> Result<(), RecordError> {
        self.delete(&Self::effect_key(effect)).await
    }

    fn last_key(project: &str, group: &str) -> String {
        format!("results/{}.json", hex16(&format!("{project}\n{group}")))
    }

    pub async fn last_result(
        &self,
        project: &str,
        group: &str,
    ) -> Result<Option<LastResult>, RecordError> {
        self.get_json(&Self::last_key(project, group)).await
    }

    pub async fn put_last_result(
        &self,
        project: &str,
        group: &str,
        last: &LastResult,
    ) -> Result<(), RecordError> {
        self.put_json(&Self::last_key(project, group), last).await
    }

    /// An SVG badge, served from the bucket, never cached for long.
    pub async fn put_badge(&self, key: &str, svg: String) -> Result<(), RecordError> {
        self.put(
            key,
            svg.into_bytes(),
            "image/svg+xml",
            Some("no-cache, max-age=60"),
            false,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_keys_come_from_the_id_or_the_arn() {
        assert_eq!(
            build_key("gantry-build:7f1c"),
            "builds/gantry-build/7f1c.json"
        );
        assert_eq!(
            build_key("arn:aws:codebuild:eu-west-1:123456789012:build/gantry-build:7f1c"),
            "builds/gantry-build/7f1c.json"
        );
    }
}
