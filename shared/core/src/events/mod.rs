//! The event contract: what Gantry's functions say to each other on the
//! EventBridge bus.
//!
//! Source `gantry`; one detail type per struct below. Details are snake_case
//! JSON with a version field `v`, and stay far under EventBridge's 256 KB
//! entry limit because every list and free-text field is capped where it is
//! built (see [`limits`]). The rules in `template.yaml` are written against
//! these names; a test checks they match.

use crate::ids::{BuildArn, BuildId, CommitSha, CorrelationId, RepoName};

mod buildspec;

pub use buildspec::{BuildspecBody, BuildspecLocation, BuildspecOrigin, BuildspecRef};
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

/// Implements [`Detail`] for a struct with a `correlation_id` field.
macro_rules! detail {
    ($ty:ty, $name:literal) => {
        impl Detail for $ty {
            const DETAIL_TYPE: &'static str = $name;
            fn correlation_id(&self) -> &str {
                &self.correlation_id
            }
        }
    };
}

/// What started the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Push,
    PullRequest,
    /// `gantry run`: someone with access to the bus asked for it.
    Manual,
    /// A `schedules:` entry of gantry.yaml fired.
    Schedule,
}

impl Trigger {
    /// As events, `GANTRY_TRIGGER` and the build page spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Push => "push",
            Trigger::PullRequest => "pull_request",
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
        }
    }
}

/// A plain environment variable a manual run adds to its build (never a
/// secret: it travels in events and shows on the build page's request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    pub value: String,
}

/// What a build runs on when gantry.yaml says (a repository rule or a
/// named build): CodeBuild's StartBuild overrides. start-build refuses a
/// value the operator's allowed lists (template.yaml) do not hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compute {
    /// `BUILD_GENERAL1_MEDIUM`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_type: Option<String>,
    /// The build image, e.g. `aws/codebuild/standard:7.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The build's timeout, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<u32>,
}

impl Compute {
    pub fn is_empty(&self) -> bool {
        *self == Compute::default()
    }

    /// These settings, each one unset taken from `fallback`.
    pub fn or(&self, fallback: &Compute) -> Compute {
        Compute {
            compute_type: self
                .compute_type
                .clone()
                .or_else(|| fallback.compute_type.clone()),
            image: self.image.clone().or_else(|| fallback.image.clone()),
            timeout_minutes: self.timeout_minutes.or(fallback.timeout_minutes),
        }
    }
}

/// One named build of a repository's `builds:`, as far as the functions
/// after the webhook need it (they do not read gantry.yaml): its name and
/// plain variables (its compute is the source's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// Plain variables from gantry.yaml.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<Variable>,
    /// Every named build requested together with this one (itself
    /// included): the members the aggregate status waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub of: Vec<String>,
}

/// Who or what asked for a build that no delivery started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The caller's AWS identity (its ARN) for a manual run; the schedule's
    /// name for a scheduled one.
    pub by: String,
    /// Extra plain variables (`gantry run --var NAME=VALUE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// The schedule that fired ([`crate::schedule::ScheduleId`]'s text):
    /// its builds' ends free it for its next firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRef {
    /// `owner/name`.
    pub full_name: RepoName,
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
    pub base_sha: CommitSha,
    pub head_branch: String,
    /// `owner/name` of the head repository; `None` if the fork was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_repository: Option<String>,
    pub draft: bool,
    /// Who approved this head commit of a fork's pull request by adding
    /// the configured approval label (`labeled` deliveries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// The label added, for a `labeled` delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
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
    pub commit_sha: CommitSha,
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
    /// When GitHub made the delivery's event (a push's `pushed_at`, a pull
    /// request's `updated_at`), in milliseconds since the Unix epoch; 0 if
    /// the payload carried none. Signed with the body, so a replayed old
    /// delivery keeps its old time: it orders the builds of one branch or
    /// pull request, so that an older commit never supersedes a newer one.
    #[serde(default)]
    pub signed_at_ms: u64,
    /// When the webhook received the delivery, in milliseconds since the
    /// Unix epoch: breaks ties between deliveries signed in the same second.
    #[serde(default)]
    pub received_at_ms: u64,
    /// The GitHub App installation the delivery came through (App mode):
    /// the installation whose tokens read and report on this repository.
    /// None for a repository's own webhook (token mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<u64>,
    /// 1 for a delivery's build; each Re-run from GitHub of the same
    /// commit and project counts up (`GANTRY_ATTEMPT`).
    #[serde(default = "first_attempt", skip_serializing_if = "is_first_attempt")]
    pub attempt: u32,
    /// The named build of the repository's `builds:` this is: its own
    /// chain, status context and supersession. `None`: the repository's
    /// one build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// A manual or scheduled build's request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRequest>,
    /// What gantry.yaml overrides of the project's compute, image and
    /// timeout for this build.
    #[serde(default, skip_serializing_if = "Compute::is_empty")]
    pub compute: Compute,
}

fn first_attempt() -> u32 {
    1
}

fn is_first_attempt(attempt: &u32) -> bool {
    *attempt == 1
}

impl BuildSource {
    /// A build asked for by name, not by a change: a manual run or a
    /// schedule's, of `commit` at `git_ref` (`refs/heads/…`, `refs/tags/…`,
    /// or the commit itself), asked at `at_ms`. Its changed paths are
    /// unknown, so path filters do not hold it back.
    pub fn asked_for(
        trigger: Trigger,
        repository: RepositoryRef,
        commit: CommitSha,
        git_ref: String,
        run: RunRequest,
        at_ms: u64,
    ) -> BuildSource {
        let branch = git_ref.strip_prefix("refs/heads/").map(str::to_owned);
        let tag = git_ref.strip_prefix("refs/tags/").map(str::to_owned);
        BuildSource {
            trigger,
            repository,
            commit_sha: commit,
            git_ref,
            branch,
            tag,
            pull_request: None,
            fork: false,
            pusher: None,
            sender: None,
            head_commit: None,
            changed_paths: ChangedPaths {
                paths: Vec::new(),
                truncated: true,
            },
            compare_url: None,
            signed_at_ms: at_ms,
            received_at_ms: now_ms(),
            installation_id: None,
            attempt: 1,
            member: None,
            run: Some(run),
            compute: Default::default(),
        }
    }

    /// The order of deliveries within a group: signed time first, arrival
    /// second.
    pub fn order(&self) -> (u64, u64) {
        (self.signed_at_ms, self.received_at_ms)
    }

    /// The builds that supersede each other: one pull request, or one
    /// branch or tag of one repository; per named build of `builds:`.
    pub fn group(&self) -> String {
        let repo = self.repository.full_name.to_ascii_lowercase();
        let group = match (&self.pull_request, &self.branch, &self.tag) {
            (Some(pr), _, _) => format!("{repo}#pr/{}", pr.number),
            (None, _, Some(tag)) => format!("{repo}#tag/{tag}"),
            (None, Some(branch), None) => format!("{repo}#branch/{branch}"),
            (None, None, None) => format!("{repo}#ref/{}", self.git_ref),
        };
        // A manual or scheduled build neither stops a push's build nor is
        // stopped by one: each kind supersedes only its own.
        let group = match self.trigger {
            Trigger::Push | Trigger::PullRequest => group,
            Trigger::Manual | Trigger::Schedule => format!("{group}!{}", self.trigger.as_str()),
        };
        match &self.member {
            Some(member) => format!("{group}@{}", member.name),
            None => group,
        }
    }
}

/// `Build Requested`: a delivery passed every rule and should build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRequested {
    pub v: u32,
    /// The GitHub delivery id, carried through every later event and log line.
    pub correlation_id: CorrelationId,
    /// The CodeBuild project.
    pub project: String,
    /// The buildspec path in the repository, if the configuration names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec: Option<String>,
    pub source: BuildSource,
    /// A pull request's path filters, left to validate-buildspec: the
    /// delivery does not list a pull request's files, and reading them from
    /// GitHub (up to 30 pages) does not fit the webhook's 10 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<PathRules>,
}

detail!(BuildRequested, "Build Requested");

/// Path filters as patterns (gantry.yaml's globs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRules {
    /// `None`: every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths_ignore: Vec<String>,
}

/// What someone asked of a Gantry check run on GitHub (App mode): a
/// `check_run` or `check_suite` delivery, verified, for build-events to
/// carry out against the run's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRunRequested {
    pub v: u32,
    /// The delivery's id: the new build's, for a re-run or an approval.
    pub correlation_id: CorrelationId,
    /// `owner/name`.
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<u64>,
    /// Who asked (`sender.login`).
    pub sender: String,
    pub request: CheckRequest,
}

detail!(CheckRunRequested, "Check Run Requested");

/// The request itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckRequest {
    /// Re-run (`check_run.rerequested`): a new build of the run's commit
    /// and project.
    Rerun {
        check_run_id: u64,
        external_id: String,
    },
    /// Re-run all (`check_suite.rerequested`): each Gantry run of the suite.
    RerunSuite { check_suite_id: u64 },
    /// A button (`check_run.requested_action`).
    Action {
        check_run_id: u64,
        external_id: String,
        identifier: String,
    },
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
    pub correlation_id: CorrelationId,
    pub project: String,
    pub reason: SkipReason,
    pub source: BuildSource,
}

detail!(BuildSkipped, "Build Skipped");

/// The size of one PutEvents entry as EventBridge counts it: source, detail
/// type and detail, in UTF-8 bytes.
pub fn entry_size(detail_type: &str, detail_json: &str) -> usize {
    SOURCE.len() + detail_type.len() + detail_json.len()
}

/// Milliseconds since the Unix epoch, as events and records carry time.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
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

/// Buildspecs up to this size travel inside the event.
pub const INLINE_BUILDSPEC_BYTES: usize = 32 * 1024;
/// Diagnostics kept in an event; the rest are counted.
pub const MAX_EVENT_DIAGNOSTICS: usize = 20;

/// A fork's held commit approved by someone who may: checked through
/// GitHub (their permission) and against the hold (that commit was held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The login that added the approval label.
    pub by: String,
    /// Their role on the repository, as GitHub named it.
    pub role: String,
    /// The delivery whose `Build Held` held this commit.
    pub held_by: String,
}

/// `Buildspec Validated`: the buildspec at the commit is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildspecValidated {
    pub v: u32,
    pub correlation_id: CorrelationId,
    pub project: String,
    pub source: BuildSource,
    /// Set only by validate-buildspec, once it has checked the approval: a
    /// fork's commit builds with secrets only with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    pub buildspec: BuildspecRef,
    /// Warnings (unknown keys and the like), capped at [`MAX_EVENT_DIAGNOSTICS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::diagnostic::Diagnostic>,
}

detail!(BuildspecValidated, "Buildspec Validated");

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
    pub correlation_id: CorrelationId,
    pub project: String,
    pub source: BuildSource,
    pub stage: RejectedAt,
    /// One line for a person (fits a commit status).
    pub reason: String,
    /// Where the buildspec was looked for or read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec_location: Option<BuildspecLocation>,
    /// Errors first, capped at [`MAX_EVENT_DIAGNOSTICS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<crate::diagnostic::Diagnostic>,
    /// How many diagnostics there were in all.
    #[serde(default)]
    pub diagnostic_count: usize,
    /// The secret references that could not be resolved (stage `secrets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretProblem>,
}

detail!(BuildRejected, "Build Rejected");

/// Where a secret reference was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretOrigin {
    /// The repository's `secrets` mapping in gantry.yaml.
    Config,
    /// The buildspec's own `env.parameter-store` or `env.secrets-manager`.
    Buildspec,
}

/// Where a secret is kept, as CodeBuild's environment variable types name
/// the two it resolves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretStore {
    /// An SSM parameter (`PARAMETER_STORE`).
    #[default]
    ParameterStore,
    /// A Secrets Manager secret (`SECRETS_MANAGER`).
    SecretsManager,
}

impl SecretStore {
    pub fn is_parameter_store(&self) -> bool {
        *self == SecretStore::ParameterStore
    }

    /// The buildspec key that names such secrets.
    pub const fn buildspec_key(self) -> &'static str {
        match self {
            SecretStore::ParameterStore => "env.parameter-store",
            SecretStore::SecretsManager => "env.secrets-manager",
        }
    }
}

/// A secret by reference: the build's environment variable and what
/// CodeBuild resolves for it. Never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub variable: String,
    /// The SSM parameter's name; for Secrets Manager, the reference
    /// `secret-id[:json-key[:version-stage[:version-id]]]`.
    pub parameter: String,
    pub from: SecretOrigin,
    #[serde(default, skip_serializing_if = "SecretStore::is_parameter_store")]
    pub store: SecretStore,
}

impl SecretRef {
    /// What the store is asked about: the parameter's name, or the
    /// secret's id in a Secrets Manager reference.
    pub fn id(&self) -> &str {
        match self.store {
            SecretStore::ParameterStore => &self.parameter,
            SecretStore::SecretsManager => crate::buildspec::secret_id(&self.parameter),
        }
    }

    /// The name the trust domain's path must hold: the parameter's name,
    /// or the secret's name (an ARN's resource part).
    pub fn name(&self) -> &str {
        match self.store {
            SecretStore::ParameterStore => &self.parameter,
            SecretStore::SecretsManager => crate::buildspec::secret_name(self.id()),
        }
    }
}

/// What is wrong with a secret reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretProblemKind {
    /// No such parameter.
    Missing,
    /// The parameter exists, or may, but Gantry may not read it.
    Forbidden,
    /// Outside the path prefix the build's role may read.
    OutsidePrefix,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretProblem {
    pub variable: String,
    pub parameter: String,
    pub from: SecretOrigin,
    pub problem: SecretProblemKind,
    #[serde(default, skip_serializing_if = "SecretStore::is_parameter_store")]
    pub store: SecretStore,
}

/// `Secrets Resolved`: every parameter the build needs exists and is
/// readable; the build may start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsResolved {
    pub v: u32,
    pub correlation_id: CorrelationId,
    pub project: String,
    pub source: BuildSource,
    /// The buildspec to run. For an untrusted build its secret references
    /// have been taken out.
    pub buildspec: BuildspecRef,
    /// Names only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    /// `false` for a fork's pull request that was not approved: it builds
    /// with no secret references, under the untrusted role.
    pub trusted: bool,
    /// Why secrets were withheld, for the status and the build log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
    /// Stop the older in-progress builds of the same branch or pull request.
    pub cancel_superseded: bool,
}

detail!(SecretsResolved, "Secrets Resolved");

/// `Build Started`: CodeBuild accepted the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStarted {
    pub v: u32,
    pub correlation_id: CorrelationId,
    pub project: String,
    pub source: BuildSource,
    pub build_id: BuildId,
    pub build_arn: BuildArn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_number: Option<i64>,
    /// The build in the CodeBuild console.
    pub build_url: String,
    /// Its logs in CloudWatch, when CodeBuild gave a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_url: Option<String>,
    pub buildspec_digest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    pub trusted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
}

detail!(BuildStarted, "Build Started");

/// Why a build waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldCode {
    /// A fork's pull request waits for a maintainer's approval label.
    Approval,
    /// CodeBuild refused for concurrency or account limits; retrying.
    Queued,
}

/// `Build Held`: not started yet, and not failed: waiting for approval or
/// for capacity. Its commit status stays `pending` with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildHeld {
    pub v: u32,
    pub correlation_id: CorrelationId,
    pub project: String,
    pub source: BuildSource,
    pub code: HoldCode,
    /// For a person, fits a commit status.
    pub message: String,
}

detail!(BuildHeld, "Build Held");

/// The commit that made a build unnecessary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupersededBy {
    pub commit_sha: CommitSha,
    pub correlation_id: CorrelationId,
}

/// `Build Superseded`: a newer commit of the same branch or pull request
/// took over. `build_id` is the build that was stopped, or `None` when the
/// older commit's build was never started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSuperseded {
    pub v: u32,
    /// The superseded commit's correlation id.
    pub correlation_id: CorrelationId,
    pub project: String,
    /// The superseded commit.
    pub source: BuildSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<BuildId>,
    pub superseded_by: SupersededBy,
}

detail!(BuildSuperseded, "Build Superseded");

/// `Approval Ignored`: a label meant to approve a fork's commit, from
/// someone who may not (they cannot push) or for a commit that was never
/// held (pushed after the hold). Nothing builds; the event log says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalIgnored {
    pub v: u32,
    pub correlation_id: CorrelationId,
    pub project: String,
    pub source: BuildSource,
    /// Who added the label.
    pub by: String,
    /// For a person.
    pub reason: String,
}

detail!(ApprovalIgnored, "Approval Ignored");

/// Every detail type Gantry publishes, for the tests that check the rules.
pub const DETAIL_TYPES: &[&str] = &[
    BuildRequested::DETAIL_TYPE,
    BuildSkipped::DETAIL_TYPE,
    BuildspecValidated::DETAIL_TYPE,
    BuildRejected::DETAIL_TYPE,
    SecretsResolved::DETAIL_TYPE,
    BuildHeld::DETAIL_TYPE,
    BuildStarted::DETAIL_TYPE,
    BuildSuperseded::DETAIL_TYPE,
    ApprovalIgnored::DETAIL_TYPE,
    CheckRunRequested::DETAIL_TYPE,
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_named_build_and_each_kind_of_request_supersedes_only_its_own() {
        let push = crate::fixtures::push_source();
        let member = |name: &str| {
            let mut s = push.clone();
            s.member = Some(Member {
                name: name.into(),
                environment: Vec::new(),
                of: vec!["lint".into(), "test".into()],
            });
            s
        };
        let with = |trigger| BuildSource {
            trigger,
            ..push.clone()
        };
        let groups = [
            push.group(),
            member("lint").group(),
            member("test").group(),
            with(Trigger::Manual).group(),
            with(Trigger::Schedule).group(),
        ];
        for (i, a) in groups.iter().enumerate() {
            for b in &groups[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // The same member of the next commit is in its group.
        let mut next = member("lint");
        next.commit_sha = "0123456789012345678901234567890123456789".into();
        assert_eq!(next.group(), member("lint").group());
    }
}
