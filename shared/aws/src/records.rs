//! What Gantry remembers, in the artifact bucket: the records of
//! `gantry_core::records` stored as JSON, and the claims of effects as
//! leases. S3 is strongly consistent and supports `If-None-Match: *` and
//! `If-Match`: "exactly once" needs nothing more.

use serde::{Deserialize, Serialize};

use crate::{describe_sdk_error, http_status};
use gantry_core::ids::BuildId;
use gantry_core::records::{
    BuildRecord, CommitMark, Effect, Hold, Holder, LastResult, Mark, TAKEOVER_GRACE_MS, build_key,
    hex16, hold_key,
};

#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {reason}")]
pub struct RecordError {
    pub bucket: String,
    pub key: String,
    pub reason: String,
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

#[derive(Clone)]
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

    /// The JSON at `key` and its ETag, for [`Self::replace_json`].
    pub async fn get_json_tagged<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<(T, String)>, RecordError> {
        let Some((text, etag)) = self.get_with_etag(key).await? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(|value| Some((value, etag)))
            .map_err(|e| self.error(key, format!("unreadable: {e}")))
    }

    /// Writes `value` at `key` if it is still what was read with `etag`:
    /// `false` when it changed meanwhile (read it again and decide anew).
    pub async fn replace_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        etag: &str,
    ) -> Result<bool, RecordError> {
        let body = serde_json::to_vec(value).map_err(|e| self.error(key, e.to_string()))?;
        self.put_if(
            key,
            body,
            "application/json",
            None,
            Condition::Matches(etag),
        )
        .await
        .map(|etag| etag.is_some())
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

    /// Writes the build's record, and its entry in the repository's
    /// history (an empty object: the same key each time).
    pub async fn put_build(&self, record: &BuildRecord) -> Result<(), RecordError> {
        self.put_json(&build_key(&record.build_id), record).await?;
        let key = gantry_core::records::history_key(
            &record.source.repository.full_name,
            record.started_at_ms,
            &record.build_id,
        );
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(Vec::new().into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error(&key, describe_sdk_error(&e)))
    }

    /// The newest `limit` builds of `repo`, newest first (a build whose
    /// record is gone is left out).
    pub async fn recent_builds(
        &self,
        repo: &str,
        limit: usize,
    ) -> Result<Vec<BuildRecord>, RecordError> {
        let prefix = gantry_core::records::history_prefix(repo);
        let page = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .max_keys(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| self.error(&prefix, describe_sdk_error(&e)))?;
        let ids: Vec<BuildId> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(gantry_core::records::history_build)
            .take(limit)
            .collect();
        let mut reads = tokio::task::JoinSet::new();
        for (i, id) in ids.into_iter().enumerate() {
            let records = self.clone();
            reads.spawn(async move { (i, records.build(&id).await) });
        }
        let mut found = Vec::new();
        while let Some(done) = reads.join_next().await {
            if let Ok((i, read)) = done
                && let Some(record) = read?
            {
                found.push((i, record));
            }
        }
        found.sort_by_key(|(i, _)| *i);
        Ok(found.into_iter().map(|(_, r)| r).collect())
    }

    pub async fn build(&self, build_id: &BuildId) -> Result<Option<BuildRecord>, RecordError> {
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
                    if expires > gantry_core::events::now_ms() {
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
