//! The event contract: what Gantry's functions say to each other on the
//! EventBridge bus.
//!
//! Source `gantry`; one detail type per struct below. Details are snake_case
//! JSON with a version field `v`, and stay far under EventBridge's 256 KB
//! entry limit because every list and free-text field is capped where it is
//! built (see [`limits`]). The rules in `template.yaml` are written against
//! these names; a test checks they match.

use serde::{Deserialize, Serialize};

/// `source` of every event Gantry publishes.
pub const SOURCE: &str = "gantry";
/// Version of the detail schema, the `v` field.
pub const VERSION: u32 = 1;

/// EventBridge's limit for one PutEvents entry, source and detail type included.
/// <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html>
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// Caps applied while normalising, chosen so the largest possible detail
/// stays under a third of [`MAX_ENTRY_BYTES`].
pub mod limits {
    /// Changed paths kept in an event.
    pub const CHANGED_PATHS: usize = 500;
    /// Total bytes of the changed paths kept.
    pub const CHANGED_PATHS_BYTES: usize = 48 * 1024;
    /// A commit message or pull request title, in bytes.
    pub const MESSAGE_BYTES: usize = 4 * 1024;
    /// Any other string taken from a payload (names, refs, URLs).
    pub const FIELD_BYTES: usize = 1024;
}

/// A detail type on the bus.
pub trait Detail: Serialize {
    const DETAIL_TYPE: &'static str;
    fn correlation_id(&self) -> &str;
}

/// What started the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Push,
    PullRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRef {
    /// `owner/name`.
    pub full_name: String,
    pub owner: String,
    pub name: String,
    pub clone_url: String,
    pub html_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestRef {
    pub number: u64,
    pub title: String,
    pub author: String,
    pub url: String,
    /// The action that triggered the delivery (`opened`, `synchronize`, …).
    pub action: String,
    pub base_branch: String,
    pub base_sha: String,
    pub head_branch: String,
    /// `owner/name` of the head repository; `None` if the fork was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_repository: Option<String>,
    pub draft: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadCommit {
    /// The message, capped at [`limits::MESSAGE_BYTES`].
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The paths a push changed, as far as the payload tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedPaths {
    pub paths: Vec<String>,
    /// The list is incomplete (capped here, capped by GitHub, or not in the
    /// payload at all); path rules then count it as matching.
    pub truncated: bool,
}

/// Where a build comes from: one commit of one repository, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSource {
    pub trigger: Trigger,
    pub repository: RepositoryRef,
    /// The commit to build (for a pull request, its head).
    pub commit_sha: String,
    /// The full ref, `refs/heads/main`, `refs/tags/v1`, `refs/pull/7/head`.
    pub git_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestRef>,
    /// The head is in another repository than the base (a fork).
    pub fork: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_commit: Option<HeadCommit>,
    pub changed_paths: ChangedPaths,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_url: Option<String>,
}

/// `Build Requested`: a delivery passed every rule and should build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRequested {
    pub v: u32,
    /// The GitHub delivery id, carried through every later event and log line.
    pub correlation_id: String,
    /// The CodeBuild project.
    pub project: String,
    /// The buildspec path in the repository, if the configuration names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec: Option<String>,
    pub source: BuildSource,
}

impl Detail for BuildRequested {
    const DETAIL_TYPE: &'static str = "Build Requested";
    fn correlation_id(&self) -> &str {
        &self.correlation_id
    }
}

/// Why a delivery does not build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCode {
    Branch,
    Tag,
    Paths,
    Directive,
    Draft,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipReason {
    pub code: SkipCode,
    /// For a person, short enough for a commit status (140 characters).
    pub message: String,
}

/// `Build Skipped`: a delivery the trigger rules filtered out. A later
/// function turns it into a `success` status saying why, so the commit is
/// never left pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSkipped {
    pub v: u32,
    pub correlation_id: String,
    pub project: String,
    pub reason: SkipReason,
    pub source: BuildSource,
}

impl Detail for BuildSkipped {
    const DETAIL_TYPE: &'static str = "Build Skipped";
    fn correlation_id(&self) -> &str {
        &self.correlation_id
    }
}

/// The size of one PutEvents entry as EventBridge counts it: source, detail
/// type and detail, in UTF-8 bytes.
pub fn entry_size(detail_type: &str, detail_json: &str) -> usize {
    SOURCE.len() + detail_type.len() + detail_json.len()
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Where a validated buildspec came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildspecOrigin {
    /// The file in the repository at the commit being built.
    Repository,
    /// The file at the base commit of a pull request from a fork: the
    /// fork's own buildspec is never run.
    BaseBranch,
    /// The project's default buildspec, deployed to S3.
    ProjectDefault,
}

/// A validated buildspec: inline when small, else in S3 under its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildspecRef {
    pub origin: BuildspecOrigin,
    /// Where it was read: `owner/name:path@sha` or `s3://bucket/key`.
    pub location: String,
    /// `sha256:<hex>` of the exact bytes validated.
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key: Option<String>,
    /// `env.parameter-store` of the buildspec: variable → SSM parameter name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter_store: Vec<(String, String)>,
}

/// Buildspecs up to this size travel inside the event.
pub const INLINE_BUILDSPEC_BYTES: usize = 32 * 1024;
/// Diagnostics kept in an event; the rest are counted.
pub const MAX_EVENT_DIAGNOSTICS: usize = 20;

/// `Buildspec Validated`: the buildspec at the commit is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildspecValidated {
    pub v: u32,
    pub correlation_id: String,
    pub project: String,
    pub source: BuildSource,
    pub buildspec: BuildspecRef,
    /// Warnings (unknown keys and the like), capped at [`MAX_EVENT_DIAGNOSTICS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::diagnostic::Diagnostic>,
}

impl Detail for BuildspecValidated {
    const DETAIL_TYPE: &'static str = "Buildspec Validated";
    fn correlation_id(&self) -> &str {
        &self.correlation_id
    }
}

/// The stage that refused a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectedAt {
    Buildspec,
    Secrets,
    Start,
}

/// `Build Rejected`: the build cannot start, and why; a later function
/// turns it into a failing commit status with the first diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRejected {
    pub v: u32,
    pub correlation_id: String,
    pub project: String,
    pub source: BuildSource,
    pub stage: RejectedAt,
    /// One line for a person (fits a commit status).
    pub reason: String,
    /// Where the buildspec was looked for or read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec_location: Option<String>,
    /// Errors first, capped at [`MAX_EVENT_DIAGNOSTICS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<crate::diagnostic::Diagnostic>,
    /// How many diagnostics there were in all.
    #[serde(default)]
    pub diagnostic_count: usize,
}

impl Detail for BuildRejected {
    const DETAIL_TYPE: &'static str = "Build Rejected";
    fn correlation_id(&self) -> &str {
        &self.correlation_id
    }
}

/// An EventBridge event as a rule's target receives it (Lambda or SQS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<D> {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: D,
}
