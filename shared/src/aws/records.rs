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
    crate::hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// How long after a holder's deadline its claim may be taken over: room
/// for the clocks of two Lambda hosts to disagree.
pub const TAKEOVER_GRACE_MS: u64 = 5_000;

/// What a claim's object says. Objects written before claims had a
/// deadline (plain text, or other JSON) read as done: their effect was
/// carried out or released by the code that wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Mark {
    /// Being carried out by `holder` until `deadline_ms`.
    Claimed {
        holder: String,
        deadline_ms: u64,
    },
    Done {
        holder: String,
    },
}

impl Mark {
    pub fn read(text: &str) -> Mark {
        serde_json::from_str(text).unwrap_or_else(|_| Mark::Done {
            holder: String::new(),
        })
    }
}

/// Who claims, and until when: the invocation's id (the correlation id
/// serves) and its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub id: String,
    pub deadline: crate::deadline::Deadline,
}

/// A claim this holder won: carry the effect out, then
/// [`Records::complete`] it, or [`Records::release`] it on failure.
#[derive(Debug)]
#[must_use = "a lease must be completed or released"]
pub struct Lease {
    key: String,
    etag: String,
    /// The holder whose expired claim this one took over.
    pub taken_from: Option<String>,
}

/// What [`Records::acquire`] found.
#[derive(Debug)]
pub enum Acquired {
    Won(Lease),
    /// Another holder's claim, which may still be carried out: try later.
    Busy {
        holder: String,
        until_ms: u64,
    },
    /// Carried out already.
    Done,
}

/// A write's precondition.
#[derive(Debug, Clone, Copy)]
enum Condition<'a> {
    None,
    /// `If-None-Match: *`.
    Absent,
    /// `If-Match: <etag>`.
    Matches(&'a str),
}

/// An effect carried out once: the one place its claim's key is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect<'a> {
    /// A commit status about `subject` (a build id, or the correlation id
    /// when no build started) in one state; `state: None` is the final one,
    /// posted once whatever it is.
    Status {
        subject: &'a str,
        state: Option<crate::github::statuses::StatusState>,
    },
    /// One chat route's message about `subject`'s outcome.
    Notify {
        subject: &'a str,
        route: usize,
        provider: &'a str,
        url_parameter: &'a str,
    },
    /// A CodePipeline execution's status in one state; `None` is final.
    Pipeline {
        execution_id: &'a str,
        state: Option<&'a str>,
    },
    /// Something other than a skip posted on this commit and context: a
    /// skip's `success` must never replace it.
    BuildOnCommit {
        repo: &'a str,
        sha: &'a str,
        context: &'a str,
    },
}

impl Effect<'_> {
    /// `effects/<hash>`; the hashed names are those claims have always had,
    /// so claims written before this type existed are still found.
    pub fn key(&self) -> String {
        let name = match self {
            Effect::Status {
                subject,
                state: None,
            } => format!("status/{subject}/final"),
            Effect::Status {
                subject,
                state: Some(state),
            } => format!("status/{subject}/{}", state.as_str()),
            Effect::Notify {
                subject,
                route,
                provider,
                url_parameter,
            } => format!("notify/{subject}/{route}/{provider}/{url_parameter}"),
            Effect::Pipeline {
                execution_id,
                state: None,
            } => format!("pipeline/{execution_id}/final"),
            Effect::Pipeline {
                execution_id,
                state: Some(state),
            } => format!("pipeline/{execution_id}/{state}"),
            Effect::BuildOnCommit { repo, sha, context } => format!(
                "commit/{}/{}/{context}",
                repo.to_ascii_lowercase(),
                sha.to_ascii_lowercase()
            ),
        };
        format!("effects/{}", hex16(&name))
    }
}

/// Who put the last status on a (commit, context), as far as Gantry knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMark {
    /// A skip, for this subject (its correlation id).
    Skip { subject: String },
    /// A build, a rejection, a hold: anything that is not a skip.
    Build { subject: String },
}

/// `holds/<hash>.json`: a fork's commit held for a maintainer's approval.
/// An approval label builds a commit only if it was held: a push after the
/// hold is a new commit, held anew, and needs its own approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The delivery whose `Build Held` held it.
    pub correlation_id: String,
    pub commit_sha: String,
    pub held_at_ms: u64,
}

fn hold_key(repo: &str, pull_request: u64, sha: &str) -> String {
    format!(
        "holds/{}.json",
        hex16(&format!(
            "{}#{pull_request}@{}",
            repo.to_ascii_lowercase(),
            sha.to_ascii_lowercase()
        ))
    )
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
        let condition = if only_if_new {
            Condition::Absent
        } else {
            Condition::None
        };
        self.put_if(key, body, content_type, cache_control, condition)
            .await
            .map(|etag| etag.is_some())
    }

    /// Writes `body` at `key` if `condition` holds: the new object's ETag,
    /// or `None` when the condition failed (S3's 412; its 409 for a
    /// concurrent conditional write to the same key, which the other
    /// request owns; its 404 for `If-Match` on a key that is gone).
    async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        cache_control: Option<&str>,
        condition: Condition<'_>,
    ) -> Result<Option<String>, RecordError> {
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_cache_control(cache_control.map(str::to_owned))
            .body(body.into());
        match condition {
            Condition::None => {}
            Condition::Absent => put = put.if_none_match("*"),
            Condition::Matches(etag) => put = put.if_match(etag),
        }
        match put.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
            Err(e)
                if !matches!(condition, Condition::None)
                    && matches!(http_status(&e), Some(412 | 409 | 404)) =>
            {
                Ok(None)
            }
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

    /// Claims `effect` for `holder` (see [`Acquired`]).
    pub async fn acquire(
        &self,
        effect: &Effect<'_>,
        holder: &Holder,
    ) -> Result<Acquired, RecordError> {
        self.acquire_key(&effect.key(), holder).await
    }

    /// The lease protocol on one key: create it, or take over a claim
    /// whose holder's deadline (and [`TAKEOVER_GRACE`]) has passed with a
    /// write conditional on the ETag read, so of several takers exactly one
    /// wins.
    pub async fn acquire_key(&self, key: &str, holder: &Holder) -> Result<Acquired, RecordError> {
        let claim = Mark::Claimed {
            holder: holder.id.clone(),
            deadline_ms: holder.deadline.epoch_ms(),
        };
        let body = serde_json::to_vec(&claim).map_err(|e| self.error(key, e.to_string()))?;
        // Three looks: a key deleted or rewritten between our read and our
        // write is looked at again, and a fourth race is contention worth
        // an error (the invocation is retried).
        for _ in 0..3 {
            if let Some(etag) = self
                .put_if(
                    key,
                    body.clone(),
                    "application/json",
                    None,
                    Condition::Absent,
                )
                .await?
            {
                return Ok(Acquired::Won(Lease {
                    key: key.to_owned(),
                    etag,
                    taken_from: None,
                }));
            }
            let Some((text, etag)) = self.get_with_etag(key).await? else {
                continue;
            };
            match Mark::read(&text) {
                Mark::Done { .. } => return Ok(Acquired::Done),
                Mark::Claimed {
                    holder: other,
                    deadline_ms,
                } => {
                    let expires = deadline_ms.saturating_add(TAKEOVER_GRACE_MS);
                    if expires > crate::events::now_ms() {
                        return Ok(Acquired::Busy {
                            holder: other,
                            until_ms: expires,
                        });
                    }
                    if let Some(etag) = self
                        .put_if(
                            key,
                            body.clone(),
                            "application/json",
                            None,
                            Condition::Matches(&etag),
                        )
                        .await?
                    {
                        tracing::warn!(
                            key,
                            previous_holder = %other,
                            "took over a claim whose holder's deadline passed"
                        );
                        return Ok(Acquired::Won(Lease {
                            key: key.to_owned(),
                            etag,
                            taken_from: Some(other),
                        }));
                    }
                }
            }
        }
        Err(self.error(key, "claim contended: changed under three reads".into()))
    }

    /// Marks the leased effect done. If the lease was taken over meanwhile
    /// (this holder outlived its deadline), the taker's claim stands and
    /// this is logged: the effect may then happen twice, the one case the
    /// deadline check before claiming exists to avoid.
    pub async fn complete(&self, lease: Lease, holder: &Holder) -> Result<(), RecordError> {
        let done = Mark::Done {
            holder: holder.id.clone(),
        };
        let body = serde_json::to_vec(&done).map_err(|e| self.error(&lease.key, e.to_string()))?;
        let written = self
            .put_if(
                &lease.key,
                body,
                "application/json",
                None,
                Condition::Matches(&lease.etag),
            )
            .await?;
        if written.is_none() {
            tracing::warn!(key = %lease.key, "a claim was taken over before its effect was marked done");
        }
        Ok(())
    }

    /// Gives a leased effect back after it failed, so a retry carries it
    /// out; a claim taken over meanwhile is left to its taker.
    pub async fn release(&self, lease: Lease) -> Result<(), RecordError> {
        match self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&lease.key)
            .if_match(&lease.etag)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(http_status(&e), Some(412 | 404)) => Ok(()),
            Err(e) => Err(self.error(&lease.key, describe_sdk_error(&e))),
        }
    }

    /// The object's text and ETag; `None` if there is none.
    async fn get_with_etag(&self, key: &str) -> Result<Option<(String, String)>, RecordError> {
        let out = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if matches!(http_status(&e), Some(404)) => return Ok(None),
            Err(e) => return Err(self.error(key, describe_sdk_error(&e))),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.error(key, format!("reading the body: {e}")))?
            .into_bytes();
        Ok(Some((String::from_utf8_lossy(&bytes).into_owned(), etag)))
    }

    /// Is the effect claimed, by anyone, in any state?
    pub async fn claimed(&self, effect: &Effect<'_>) -> Result<bool, RecordError> {
        let key = effect.key();
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

    /// Forgets an effect's claim whatever its state: a pipeline stage that
    /// is retried reopens its execution's final status.
    pub async fn forget(&self, effect: &Effect<'_>) -> Result<(), RecordError> {
        self.delete(&effect.key()).await
    }

    /// Notes that a status other than a skip is about to be posted on a
    /// (commit, context).
    pub async fn mark_build_on_commit(
        &self,
        commit: &Effect<'_>,
        subject: &str,
    ) -> Result<(), RecordError> {
        self.put_json(
            &commit.key(),
            &CommitMark::Build {
                subject: subject.to_owned(),
            },
        )
        .await
    }

    /// May a skip about `subject` post on this (commit, context)? Only if
    /// nothing but this same skip has: the first skip records itself, and
    /// its own retries find themselves.
    pub async fn skip_may_post(
        &self,
        commit: &Effect<'_>,
        subject: &str,
    ) -> Result<bool, RecordError> {
        let mark = CommitMark::Skip {
            subject: subject.to_owned(),
        };
        let key = commit.key();
        if self.create_json(&key, &mark).await? {
            return Ok(true);
        }
        Ok(self.get_json::<CommitMark>(&key).await? == Some(mark))
    }

    /// Records that `sha` of pull request `pull_request` is held.
    pub async fn put_hold(
        &self,
        repo: &str,
        pull_request: u64,
        hold: &Hold,
    ) -> Result<(), RecordError> {
        self.put_json(&hold_key(repo, pull_request, &hold.commit_sha), hold)
            .await
    }

    /// The hold of `sha` of pull request `pull_request`, if it was held.
    pub async fn hold(
        &self,
        repo: &str,
        pull_request: u64,
        sha: &str,
    ) -> Result<Option<Hold>, RecordError> {
        self.get_json(&hold_key(repo, pull_request, sha)).await
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
