//! Fetch, validate, publish.

use gantry_aws::artifacts::{self, S3Error};
use gantry_aws::bus::{EventBus, PublishError};
use gantry_aws::github::app::Permissions;
use gantry_aws::github::contents::{Fetched, GitHubClient, GitHubError};
use gantry_aws::github::credentials::{Credentials, CredentialsError};
use gantry_aws::records::{RecordError, Records};
use gantry_core::buildspec;
use gantry_core::diagnostic::{Diagnostic, Severity, has_errors};
use gantry_core::events::{
    Approval, ApprovalIgnored, BuildRejected, BuildRequested, BuildSkipped, BuildspecLocation,
    BuildspecOrigin, BuildspecRef, BuildspecValidated, MAX_EVENT_DIAGNOSTICS, RejectedAt, VERSION,
    cap,
};

/// The function's `Timeout` in template.yaml (a test holds them equal).
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The most one invocation can take when every GitHub request takes
/// `github` and every AWS call `aws`: the approval's hold, token and
/// permission, the buildspec from GitHub or either default in S3, a large
/// one stored, the outcome published. Must fit [`TIMEOUT`].
pub fn worst_case(github: std::time::Duration, aws: std::time::Duration) -> std::time::Duration {
    github.saturating_mul(2) + aws.saturating_mul(6) + PATHS_BUDGET
}

/// The longest a pull request's files are read for its path filters
/// (up to 30 pages); past it, the pull request builds.
pub const PATHS_BUDGET: std::time::Duration = std::time::Duration::from_secs(25);

/// The path CodeBuild itself looks for when a project names none.
pub const DEFAULT_BUILDSPEC_PATH: &str = "buildspec.yml";

pub struct Deps {
    pub github: GitHubClient,
    /// The token (none reads public repositories unauthenticated) or the
    /// App's installation tokens.
    pub credentials: Credentials,
    pub s3: aws_sdk_s3::Client,
    /// The holds of forks' commits, which an approval must match.
    pub records: Records,
    /// Holds the projects' default buildspecs (`buildspecs/<project>.yml`,
    /// `buildspecs/default.yml`) and buildspecs too large for an event.
    pub bucket: String,
    pub bus: EventBus,
}

/// What became of a `Build Requested`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Validated(Box<BuildspecValidated>),
    Rejected(Box<BuildRejected>),
    /// An approval label that approves nothing: nothing builds.
    ApprovalIgnored(Box<ApprovalIgnored>),
    /// A pull request none of whose files the path filters take.
    Skipped(Box<BuildSkipped>),
}

/// Failures that a retry may cure; the invocation fails and EventBridge
/// retries it (then the dead-letter queue keeps it).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl gantry_core::failure::ErrorKind for HandlerError {
    fn kind(&self) -> &'static str {
        match self {
            HandlerError::GitHub(e) if e.is_transient() => "validate-buildspec.GitHubUnavailable",
            HandlerError::GitHub(_) => "validate-buildspec.GitHubRefused",
            HandlerError::Credentials(_) => "validate-buildspec.GitHubTokenUnavailable",
            HandlerError::S3(_) | HandlerError::Record(_) => "validate-buildspec.S3Unavailable",
            HandlerError::Publish(_) => "validate-buildspec.EventBridgeUnavailable",
        }
    }
}

/// Where to look, in order, and what each place is.
struct Candidate {
    origin: BuildspecOrigin,
    location: BuildspecLocation,
    read: Read,
}

enum Read {
    GitHub {
        /// The App installation the delivery came through.
        installation: Option<u64>,
        repo: String,
        path: String,
        git_ref: String,
    },
    S3 {
        key: String,
    },
}

fn candidates(deps: &Deps, request: &BuildRequested) -> Vec<Candidate> {
    let source = &request.source;
    let path = request
        .buildspec
        .clone()
        .unwrap_or_else(|| DEFAULT_BUILDSPEC_PATH.to_owned());
    let repo = source.repository.full_name.clone();
    // A fork's own buildspec is never run: it could do anything with the
    // build's role. The base branch's, at the base commit, is.
    let (origin, git_ref) = match &source.pull_request {
        Some(pr) if source.fork => (BuildspecOrigin::BaseBranch, pr.base_sha.clone()),
        _ => (BuildspecOrigin::Repository, source.commit_sha.clone()),
    };
    let mut out = vec![Candidate {
        origin,
        location: BuildspecLocation::Repository {
            repo: repo.clone(),
            path: path.clone(),
            commit: git_ref.clone(),
        },
        read: Read::GitHub {
            installation: source.installation_id,
            repo: repo.to_string(),
            path,
            git_ref: git_ref.to_string(),
        },
    }];
    for key in [
        format!("buildspecs/{}.yml", request.project),
        "buildspecs/default.yml".to_owned(),
    ] {
        out.push(Candidate {
            origin: BuildspecOrigin::ProjectDefault,
            location: BuildspecLocation::S3 {
                bucket: deps.bucket.clone(),
                key: key.clone(),
            },
            read: Read::S3 { key },
        });
    }
    out
}

async fn read(deps: &Deps, read: &Read) -> Result<Fetched, HandlerError> {
    match read {
        Read::GitHub {
            installation,
            repo,
            path,
            git_ref,
        } => {
            let token = deps
                .credentials
                .token(*installation, repo, Permissions::READ_CONTENTS)
                .await?;
            Ok(deps
                .github
                .file_at(repo, path, git_ref, token.as_ref())
                .await?)
        }
        Read::S3 { key } => Ok(
            match artifacts::get_text(&deps.s3, &deps.bucket, key).await? {
                Some(text) => Fetched::Found(text),
                None => Fetched::NotFound,
            },
        ),
    }
}

fn rejected(
    request: &BuildRequested,
    reason: String,
    location: Option<BuildspecLocation>,
    diagnostics: Vec<Diagnostic>,
) -> BuildRejected {
    let diagnostic_count = diagnostics.len();
    let mut diagnostics = diagnostics;
    // Errors first, then by position; the status shows the first.
    diagnostics.sort_by_key(|d| (d.severity != Severity::Error, d.line, d.col));
    diagnostics.truncate(MAX_EVENT_DIAGNOSTICS);
    for d in &mut diagnostics {
        d.message = cap(&d.message, 512);
    }
    BuildRejected {
        v: VERSION,
        correlation_id: request.correlation_id.clone(),
        project: request.project.clone(),
        source: request.source.clone(),
        stage: RejectedAt::Buildspec,
        reason: cap(&reason, 1024),
        buildspec_location: location,
        diagnostics,
        diagnostic_count,
        secrets: Vec::new(),
    }
}

/// The approval a `labeled` delivery carries, checked: `Ok(None)` for a
/// delivery that approves nothing, `Ok(Some)` for an approval that holds,
/// `Err(reason)` for one that does not. The labeller must be able to push
/// (GitHub says: the Triage role can label but not push), and the commit
/// must be one that was held (a push after the hold needs a new approval).
async fn check_approval(
    deps: &Deps,
    request: &BuildRequested,
) -> Result<Result<Option<Approval>, String>, HandlerError> {
    let source = &request.source;
    let Some(pr) = &source.pull_request else {
        return Ok(Ok(None));
    };
    let Some(by) = &pr.approved_by else {
        return Ok(Ok(None));
    };
    let repo = &source.repository.full_name;
    let short = source.commit_sha.short();
    // The hold first: it costs no GitHub call.
    let Some(hold) = deps
        .records
        .hold(repo, pr.number, &source.commit_sha)
        .await?
    else {
        return Ok(Err(format!(
            "{short} was not held for approval (pushed after the hold, or never from a fork): it needs its own approval once held"
        )));
    };
    let token = match deps
        .credentials
        .token(source.installation_id, repo, Permissions::READ_METADATA)
        .await
    {
        Ok(Some(token)) => token,
        Ok(None) => {
            return Ok(Err(
                "no GitHub token to check the labeller's permission with".to_owned(),
            ));
        }
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => return Ok(Err(format!("cannot check @{by}'s permission: {e}"))),
    };
    let permission = match deps.github.permission(repo, by, &token).await {
        Ok(p) => p,
        Err(e) if e.is_transient() => return Err(e.into()),
        // Cannot tell: never approved on a guess.
        Err(e) => return Ok(Err(format!("could not check @{by}'s permission: {e}"))),
    };
    if !permission.can_push() {
        return Ok(Err(format!(
            "@{by} has the {} role on {repo}; only write, maintain or admin may approve a fork's build",
            permission.describe()
        )));
    }
    Ok(Ok(Some(Approval {
        by: by.clone(),
        role: permission.describe().to_owned(),
        held_by: hold.correlation_id.to_string(),
    })))
}

/// A pull request's path filters, held to its files as GitHub lists them:
/// the skip, if none is taken. A list GitHub cut at 3,000 files, or could
/// not give (an error, or not within [`PATHS_BUDGET`]), builds.
async fn paths_skip(deps: &Deps, request: &BuildRequested) -> Option<BuildSkipped> {
    let rules = request.paths.as_ref()?;
    let source = &request.source;
    let pr = source.pull_request.as_ref()?;
    let repo = source.repository.full_name.as_str();
    let read = async {
        let token = deps
            .credentials
            .token(
                source.installation_id,
                repo,
                Permissions::READ_PULL_REQUESTS,
            )
            .await
            .map_err(|e| e.to_string())?;
        deps.github
            .pull_request_files(repo, pr.number, token.as_ref())
            .await
            .map_err(|e| e.to_string())
    };
    let changed = match tokio::time::timeout(PATHS_BUDGET, read).await {
        Ok(Ok(changed)) => changed,
        Ok(Err(reason)) => {
            tracing::warn!(correlation_id = %request.correlation_id, repo, pull_request = pr.number, reason = %reason, "the pull request's files could not be read; it builds");
            return None;
        }
        Err(_) => {
            tracing::warn!(correlation_id = %request.correlation_id, repo, pull_request = pr.number, "the pull request's files took too long to read; it builds");
            return None;
        }
    };
    match gantry_core::trigger::decide_paths(rules, &changed) {
        gantry_core::trigger::Decision::Build => None,
        gantry_core::trigger::Decision::Skip(reason) => {
            let mut source = source.clone();
            source.changed_paths = changed;
            Some(BuildSkipped {
                v: VERSION,
                correlation_id: request.correlation_id.clone(),
                project: request.project.clone(),
                reason,
                source,
            })
        }
    }
}

/// Decides, stores a large buildspec, and publishes the outcome.
pub async fn handle(deps: &Deps, request: BuildRequested) -> Result<Outcome, HandlerError> {
    let correlation_id = request.correlation_id.clone();
    if let Some(skipped) = paths_skip(deps, &request).await {
        deps.bus.publish(&skipped).await?;
        tracing::info!(
            correlation_id = %correlation_id,
            repo = %skipped.source.repository.full_name,
            commit = %skipped.source.commit_sha,
            reason = %skipped.reason.message,
            outcome = "skipped",
            "path filters"
        );
        return Ok(Outcome::Skipped(Box::new(skipped)));
    }
    let approval = match check_approval(deps, &request).await {
        Ok(Ok(approval)) => approval,
        Ok(Err(reason)) => {
            let by = request
                .source
                .pull_request
                .as_ref()
                .and_then(|pr| pr.approved_by.clone())
                .unwrap_or_default();
            let ignored = ApprovalIgnored {
                v: VERSION,
                correlation_id: request.correlation_id,
                project: request.project,
                source: request.source,
                by,
                reason: cap(&reason, 1024),
            };
            deps.bus.publish(&ignored).await?;
            tracing::warn!(
                correlation_id = %correlation_id,
                repo = %ignored.source.repository.full_name,
                commit = %ignored.source.commit_sha,
                by = %ignored.by,
                reason = %ignored.reason,
                outcome = "approval_ignored",
                "approval"
            );
            return Ok(Outcome::ApprovalIgnored(Box::new(ignored)));
        }
        Err(e) => {
            tracing::error!(correlation_id = %correlation_id, error = %e, "approval not checked; EventBridge will retry");
            return Err(e);
        }
    };
    let result = decide(deps, &request, approval).await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(HandlerError::GitHub(e)) if !e.is_transient() => Outcome::Rejected(Box::new(rejected(
            &request,
            format!("cannot read the buildspec: {e}"),
            None,
            Vec::new(),
        ))),
        Err(e) => {
            tracing::error!(correlation_id = %correlation_id, error = %e, "buildspec not validated; EventBridge will retry");
            return Err(e);
        }
    };
    match &outcome {
        Outcome::Validated(e) => {
            deps.bus.publish(e.as_ref()).await?;
            tracing::info!(
                correlation_id = %correlation_id,
                repo = %e.source.repository.full_name,
                commit = %e.source.commit_sha,
                location = %e.buildspec.location,
                warnings = e.warnings.len(),
                outcome = "validated",
                "buildspec"
            );
        }
        Outcome::Rejected(e) => {
            deps.bus.publish(e.as_ref()).await?;
            tracing::info!(
                correlation_id = %correlation_id,
                repo = %e.source.repository.full_name,
                commit = %e.source.commit_sha,
                reason = %e.reason,
                outcome = "rejected",
                "buildspec"
            );
        }
        // Published above, before any buildspec was read.
        Outcome::ApprovalIgnored(_) | Outcome::Skipped(_) => {}
    }
    Ok(outcome)
}

async fn decide(
    deps: &Deps,
    request: &BuildRequested,
    approval: Option<Approval>,
) -> Result<Outcome, HandlerError> {
    let mut looked = Vec::new();
    for candidate in candidates(deps, request) {
        let text = match read(deps, &candidate.read).await? {
            Fetched::Found(text) => text,
            Fetched::NotFound => {
                looked.push(candidate.location);
                continue;
            }
        };
        let analysis = buildspec::analyse(&text);
        if has_errors(&analysis.diagnostics) {
            let errors = analysis
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let first = analysis
                .diagnostics
                .iter()
                .find(|d| d.severity == Severity::Error)
                .map(|d| format!(": {}:{}", d.line, d.col))
                .unwrap_or_default();
            let reason = format!(
                "buildspec {} has {errors} error{}{first}",
                candidate.location,
                if errors == 1 { "" } else { "s" }
            );
            return Ok(Outcome::Rejected(Box::new(rejected(
                request,
                reason,
                Some(candidate.location),
                analysis.diagnostics,
            ))));
        }
        let digest = buildspec::digest(&text);
        let body = artifacts::place_buildspec(&deps.s3, &deps.bucket, text, &digest).await?;
        let mut warnings = analysis.diagnostics;
        warnings.truncate(MAX_EVENT_DIAGNOSTICS);
        return Ok(Outcome::Validated(Box::new(BuildspecValidated {
            v: VERSION,
            correlation_id: request.correlation_id.clone(),
            project: request.project.clone(),
            source: request.source.clone(),
            approval,
            buildspec: BuildspecRef {
                origin: candidate.origin,
                location: candidate.location,
                digest,
                body,
                secrets_removed: false,
                parameter_store: analysis.parameter_store,
                secrets_manager: analysis.secrets_manager,
                artifacts: analysis.artifacts,
            },
            warnings,
        })));
    }
    Ok(Outcome::Rejected(Box::new(rejected(
        request,
        format!(
            "no buildspec found; looked in {}",
            looked
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        looked.first().cloned(),
        Vec::new(),
    ))))
}
