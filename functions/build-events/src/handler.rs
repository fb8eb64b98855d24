//! From an event to a status, messages, a record and a badge.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use gantry_aws::chat::Notifier;
use gantry_aws::config_source::{ConfigError, ConfigSource};
use gantry_aws::github::contents::{GitHubClient, GitHubError};
use gantry_aws::records::{Acquired, RecordError, Records};
use gantry_aws::secrets::{SecretCache, SecretError};
use gantry_core::badge::{self, BadgeState};
use gantry_core::codebuild_events::{self, CodeBuildDetail};
use gantry_core::config::{Route, StatusSettings, When};
use gantry_core::deadline::{Deadline, OutOfTime};
use gantry_core::events::{
    BuildHeld, BuildRejected, BuildSkipped, BuildSource, BuildStarted, BuildSuperseded, SOURCE,
    now_ms,
};
use gantry_core::github::statuses::{CommitStatus, StatusState};
use gantry_core::notify::{BuildResult, Message, Provider, PullRequestInfo};
use gantry_core::records::{BuildRecord, Effect, Finished, Holder, LastResult, PhaseTiming};
use gantry_core::status::{self, Verdict};

pub struct Deps {
    pub github: GitHubClient,
    /// The GitHub token that posts statuses.
    pub token: SecretCache,
    pub config: ConfigSource,
    pub records: Records,
    pub notifier: Notifier,
    pub chat_urls: ChatUrls,
    /// Finds the commit of a CodePipeline execution.
    pub codepipeline: aws_sdk_codepipeline::Client,
    /// Reads what CodeBuild's events leave out (the exported `IMAGE_URI`).
    pub codebuild: aws_sdk_codebuild::Client,
    /// The longest an AWS call may take (the SDK's operation timeout).
    pub aws_timeout: Duration,
}

/// The function's `Timeout` in template.yaml (a test holds them equal):
/// what a local driver gives an invocation.
pub const TIMEOUT: Duration = Duration::from_secs(300);

impl Deps {
    /// The longest posting one commit status can take, the claim's
    /// completion included: claimed only with this much time left.
    pub fn status_budget(&self) -> Duration {
        self.github.timeout() + self.aws_timeout.saturating_mul(2)
    }

    /// The same for one chat route's message.
    pub fn notify_budget(&self) -> Duration {
        self.notifier.retry_policy().worst_case() + self.aws_timeout.saturating_mul(2)
    }
}

/// Chat webhook URLs (SSM SecureStrings), read once per TTL each.
pub struct ChatUrls {
    ssm: aws_sdk_ssm::Client,
    caches: tokio::sync::Mutex<HashMap<String, Arc<SecretCache>>>,
}

impl ChatUrls {
    pub fn new(ssm: aws_sdk_ssm::Client) -> Self {
        ChatUrls {
            ssm,
            caches: tokio::sync::Mutex::default(),
        }
    }

    async fn cache(&self, parameter: &str) -> Arc<SecretCache> {
        let mut caches = self.caches.lock().await;
        caches
            .entry(parameter.to_owned())
            .or_insert_with(|| {
                Arc::new(SecretCache::new(
                    self.ssm.clone(),
                    vec![parameter.to_owned()],
                    Duration::from_secs(300),
                ))
            })
            .clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("unreadable event: {0}")]
    Event(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("GitHub token: {0}")]
    Token(SecretError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{what}: {reason}")]
    Pipeline { what: String, reason: String },
    #[error("no build record for {build_id} yet; it is written before the build is announced")]
    NoRecord { build_id: String },
    #[error(transparent)]
    OutOfTime(#[from] OutOfTime),
    #[error(
        "{effect} is being carried out by {holder}; retrying once its claim is done or expired"
    )]
    Busy {
        effect: &'static str,
        holder: String,
    },
    #[error("{failed} of {routes} chat notifications failed: {reasons}")]
    Notify {
        failed: usize,
        routes: usize,
        reasons: String,
    },
}

/// What one event came to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The status posted, if one was.
    pub posted: Option<StatusState>,
    /// Why nothing was posted.
    pub unchanged: Option<&'static str>,
    /// Messages sent.
    pub notified: usize,
}

fn parse<T: serde::de::DeserializeOwned>(detail: &serde_json::Value) -> Result<T, HandlerError> {
    serde_json::from_value(detail.clone()).map_err(|e| HandlerError::Event(e.to_string()))
}

/// Dispatches an EventBridge event by source and detail type, with the
/// time a Lambda invocation of [`TIMEOUT`] would have.
pub async fn handle_event(deps: &Deps, event: &serde_json::Value) -> Result<Report, HandlerError> {
    handle_event_until(deps, event, Deadline::after(TIMEOUT)).await
}

/// Dispatches an EventBridge event by source and detail type; effects are
/// claimed only while `deadline` leaves time to carry them out.
pub async fn handle_event_until(
    deps: &Deps,
    event: &serde_json::Value,
    deadline: Deadline,
) -> Result<Report, HandlerError> {
    let holder = Holder {
        id: event["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map_or_else(
                || format!("build-events@{}", deadline.epoch_ms()),
                str::to_owned,
            ),
        deadline,
    };
    let holder = &holder;
    let source = event["source"].as_str().unwrap_or_default();
    let detail_type = event["detail-type"].as_str().unwrap_or_default();
    let detail = &event["detail"];
    let report = match (source, detail_type) {
        (SOURCE, "Build Skipped") => {
            let e: BuildSkipped = parse(detail)?;
            deliver(
                deps,
                holder,
                &e.correlation_id,
                &e.project,
                &e.source,
                status::skipped(&e),
                None,
            )
            .await
        }
        (SOURCE, "Build Rejected") => {
            let e: BuildRejected = parse(detail)?;
            deliver(
                deps,
                holder,
                &e.correlation_id,
                &e.project,
                &e.source,
                status::rejected(&e),
                None,
            )
            .await
        }
        (SOURCE, "Build Held") => {
            let e: BuildHeld = parse(detail)?;
            deliver(
                deps,
                holder,
                &e.correlation_id,
                &e.project,
                &e.source,
                status::held(&e),
                None,
            )
            .await
        }
        (SOURCE, "Build Started") => {
            let e: BuildStarted = parse(detail)?;
            started(deps, holder, &e).await
        }
        (SOURCE, "Build Superseded") => {
            let e: BuildSuperseded = parse(detail)?;
            superseded(deps, holder, &e).await
        }
        ("aws.codebuild", "CodeBuild Build State Change" | "CodeBuild Build Phase Change") => {
            let e = codebuild_events::parse_value(event)
                .map_err(|e| HandlerError::Event(e.to_string()))?;
            codebuild(deps, holder, &e.detail).await
        }
        ("aws.codepipeline", "CodePipeline Pipeline Execution State Change") => {
            crate::pipeline::execution_changed(deps, holder, event).await
        }
        _ => Ok(Report {
            unchanged: Some("not an event build-events reports"),
            ..Report::default()
        }),
    };
    if let Err(e) = &report {
        tracing::error!(
            correlation_id = detail["correlation_id"].as_str().unwrap_or_default(),
            detail_type,
            error = %e,
            "not reported; EventBridge will retry"
        );
    }
    report
}

async fn started(deps: &Deps, holder: &Holder, e: &BuildStarted) -> Result<Report, HandlerError> {
    let report = deliver(
        deps,
        holder,
        &e.correlation_id,
        &e.project,
        &e.source,
        status::started(e),
        None,
    )
    .await?;
    if report.posted.is_some()
        && let Some((key, branch)) = badge_of(deps, &e.source).await?
    {
        deps.records
            .put_badge(&key, badge::svg(branch, BadgeState::Running))
            .await?;
    }
    Ok(report)
}

async fn superseded(
    deps: &Deps,
    holder: &Holder,
    e: &BuildSuperseded,
) -> Result<Report, HandlerError> {
    let rules = status_settings(deps, &e.source).await?;
    if let Some(build_id) = &e.build_id
        && let Some(mut record) = deps.records.build(build_id).await?
    {
        record.superseded_by = Some(e.superseded_by.clone());
        deps.records.put_build(&record).await?;
    }
    let verdict = status::superseded(e, rules.superseded);
    deliver(
        deps,
        holder,
        &e.correlation_id,
        &e.project,
        &e.source,
        verdict,
        None,
    )
    .await
}

async fn codebuild(
    deps: &Deps,
    holder: &Holder,
    detail: &CodeBuildDetail,
) -> Result<Report, HandlerError> {
    let build_id = detail.build_id_short().to_owned();
    let Some(mut record) = deps.records.build(&build_id).await? else {
        if detail.variable("GANTRY_DELIVERY_ID").is_some() {
            return Err(HandlerError::NoRecord { build_id });
        }
        return Ok(Report {
            unchanged: Some("not a Gantry build"),
            ..Report::default()
        });
    };
    if !detail.is_final() {
        return Ok(Report {
            unchanged: Some("still running"),
            ..Report::default()
        });
    }
    finish(deps, holder, &mut record, detail).await
}

/// Reports a finished build: the record, the status, the chats, the badge.
/// Also what `reconcile` calls for a build whose final event never came.
pub async fn finish(
    deps: &Deps,
    holder: &Holder,
    record: &mut BuildRecord,
    detail: &CodeBuildDetail,
) -> Result<Report, HandlerError> {
    let Some(verdict) = status::finished(record, detail) else {
        return Ok(Report {
            unchanged: Some("stopped as superseded; reported as such"),
            ..Report::default()
        });
    };
    if record.finished.is_none() {
        record.finished = Some(Finished {
            status: detail.build_status.clone().unwrap_or_default(),
            finished_at_ms: now_ms(),
            duration_seconds: detail.duration_seconds(),
            failed_phase: detail.failed_phase().map(str::to_owned),
            phases: detail
                .additional_information
                .phases
                .iter()
                .map(|p| PhaseTiming {
                    phase: p.phase_type.clone(),
                    status: p.phase_status.clone(),
                    duration_seconds: p.duration_in_seconds.map(|d| d.max(0.0).round() as u64),
                })
                .collect(),
            image_uri: match exported_image(detail) {
                Some(uri) => Some(uri),
                None => image_from_codebuild(deps, &record.build_id).await,
            },
        });
        deps.records.put_build(record).await?;
    }
    let record = &*record;
    deliver(
        deps,
        holder,
        &record.correlation_id,
        &record.project,
        &record.source,
        verdict,
        Some(record),
    )
    .await
}

fn exported_image(detail: &CodeBuildDetail) -> Option<String> {
    detail
        .additional_information
        .exported_environment_variables
        .iter()
        .find(|v| v.name == "IMAGE_URI")
        .map(|v| v.value.clone())
        .filter(|v| !v.is_empty())
}

/// CodeBuild's state-change events do not carry exported variables; the
/// build itself does. Best effort: the record is written without it if
/// CodeBuild cannot be asked.
async fn image_from_codebuild(deps: &Deps, build_id: &str) -> Option<String> {
    match deps.codebuild.batch_get_builds().ids(build_id).send().await {
        Ok(out) => out
            .builds()
            .first()
            .and_then(|b| {
                b.exported_environment_variables()
                    .iter()
                    .find(|v| v.name() == Some("IMAGE_URI"))
            })
            .and_then(|v| v.value())
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        Err(e) => {
            tracing::warn!(
                build_id,
                reason = %gantry_aws::describe_sdk_error(&e),
                "could not read the build's exported variables"
            );
            None
        }
    }
}

async fn status_settings(
    deps: &Deps,
    source: &BuildSource,
) -> Result<StatusSettings, HandlerError> {
    let config = deps.config.get().await?;
    Ok(config
        .repository(&source.repository.full_name)
        .map(|r| r.status.clone())
        .unwrap_or_default())
}

/// A result a build ended with (not a skip, a hold or a supersession).
fn is_build_result(result: BuildResult) -> bool {
    matches!(
        result,
        BuildResult::Succeeded
            | BuildResult::Fixed
            | BuildResult::Failed
            | BuildResult::Errored
            | BuildResult::Stopped
            | BuildResult::Rejected
    )
}

fn is_failure(result: BuildResult) -> bool {
    matches!(
        result,
        BuildResult::Failed | BuildResult::Errored | BuildResult::Rejected
    )
}

/// Does `route` hear about this result?
pub fn route_wants(
    route: &Route,
    source: &BuildSource,
    result: BuildResult,
    previous: Option<&str>,
) -> bool {
    let branch = source
        .pull_request
        .as_ref()
        .map(|pr| pr.base_branch.as_str())
        .or(source.branch.as_deref());
    if let Some(globs) = &route.branches
        && !branch.is_some_and(|b| globs.is_match(b))
    {
        return false;
    }
    match route.when {
        When::Always => result.is_final() && result != BuildResult::Skipped,
        When::Failures => is_failure(result),
        // A build's result that differs from the previous one of its branch
        // or pull request ("fixed" always does); the first build counts.
        When::Changes => is_build_result(result) && previous.is_none_or(|p| p != result.label()),
    }
}

fn message(
    source: &BuildSource,
    project: &str,
    correlation_id: &str,
    verdict: &Verdict,
    record: Option<&BuildRecord>,
) -> Message {
    let finished = record.and_then(|r| r.finished.as_ref());
    Message {
        project: project.to_owned(),
        repository: source.repository.full_name.clone(),
        repository_url: source.repository.html_url.clone(),
        branch: source.branch.clone(),
        tag: source.tag.clone(),
        pull_request: source.pull_request.as_ref().map(|pr| PullRequestInfo {
            number: pr.number,
            title: pr.title.clone(),
            author: pr.author.clone(),
            url: pr.url.clone(),
        }),
        commit_sha: source.commit_sha.clone(),
        commit_message: source.head_commit.as_ref().map(|c| c.message.clone()),
        commit_url: source
            .head_commit
            .as_ref()
            .and_then(|c| c.url.clone())
            .or_else(|| {
                Some(format!(
                    "{}/commit/{}",
                    source.repository.html_url, source.commit_sha
                ))
            }),
        author: source
            .pull_request
            .as_ref()
            .map(|pr| pr.author.clone())
            .or_else(|| source.pusher.clone())
            .or_else(|| source.sender.clone()),
        result: verdict.result,
        summary: verdict.description.clone(),
        duration_seconds: finished.and_then(|f| f.duration_seconds),
        failed_phase: finished.and_then(|f| f.failed_phase.clone()),
        build_url: record.map(|r| r.build_url.clone()),
        logs_url: record.and_then(|r| r.logs_url.clone()),
        correlation_id: correlation_id.to_owned(),
    }
}

/// Posts the verdict's status once, then tells the chats, then updates the
/// branch's last result and badge for a finished build.
#[allow(clippy::too_many_arguments)]
pub async fn deliver(
    deps: &Deps,
    holder: &Holder,
    correlation_id: &str,
    project: &str,
    source: &BuildSource,
    mut verdict: Verdict,
    record: Option<&BuildRecord>,
) -> Result<Report, HandlerError> {
    let config = deps.config.get().await?;
    let rules = config.repository(&source.repository.full_name);
    let context = rules
        .map(|r| r.status.context(project))
        .unwrap_or_else(|| format!("gantry/{project}"));
    let group = source.group();
    // Only a build's result is compared with the branch's previous one
    // ("fixed", "changes"); a pending status needs no read.
    let previous = if verdict.is_final && is_build_result(verdict.result) {
        deps.records.last_result(project, &group).await?
    } else {
        None
    };
    let previous_failed = previous.as_ref().is_some_and(|p| {
        [
            BuildResult::Failed,
            BuildResult::Errored,
            BuildResult::Rejected,
        ]
        .iter()
        .any(|r| r.label() == p.result)
    });
    if verdict.result == BuildResult::Succeeded && previous_failed {
        verdict.result = BuildResult::Fixed;
    }

    // The status: once per (subject, state); a final one once per subject.
    let subject = verdict.subject.as_str();
    let final_status = Effect::Status {
        subject,
        state: None,
    };
    let this_status = Effect::Status {
        subject,
        state: (!verdict.is_final).then_some(verdict.state),
    };
    let mut report = Report::default();
    let blocked_by_final = !verdict.is_final && deps.records.claimed(&final_status).await?;
    if blocked_by_final {
        report.unchanged = Some("already finished; never back to pending");
    } else {
        holder
            .deadline
            .require(deps.status_budget(), "post a commit status")?;
        match deps.records.acquire(&this_status, holder).await? {
            Acquired::Done => report.unchanged = Some("already posted"),
            Acquired::Busy { holder: other, .. } => {
                return Err(HandlerError::Busy {
                    effect: "the commit status",
                    holder: other,
                });
            }
            Acquired::Won(lease) => {
                let status = CommitStatus {
                    state: verdict.state,
                    context: context.clone(),
                    description: verdict.description.clone(),
                    target_url: verdict.target_url.clone(),
                };
                let commit = Effect::BuildOnCommit {
                    repo: &source.repository.full_name,
                    sha: &source.commit_sha,
                    context: &context,
                };
                match post_unless_built(deps, &commit, subject, &verdict, source, &status).await {
                    Ok(posted) => {
                        deps.records.complete(lease, holder).await?;
                        if posted {
                            report.posted = Some(verdict.state);
                            tracing::info!(
                                correlation_id,
                                repo = %source.repository.full_name,
                                commit = %source.commit_sha,
                                context,
                                state = verdict.state.as_str(),
                                description = %verdict.description,
                                outcome = "status",
                                "status posted"
                            );
                        } else {
                            report.unchanged = Some(SKIP_KEPT_OUT);
                            tracing::info!(
                                correlation_id,
                                repo = %source.repository.full_name,
                                commit = %source.commit_sha,
                                context,
                                outcome = "skip_not_posted",
                                "a build's status is on this commit; the skip does not replace it"
                            );
                        }
                    }
                    Err(e) => {
                        deps.records.release(lease).await?;
                        return Err(e);
                    }
                }
            }
        }
    }

    // The chats: only for an outcome, never for "pending".
    if verdict.is_final
        && let Some(rules) = rules
    {
        let routes: Vec<&Route> = rules
            .notifications
            .iter()
            .filter(|r| {
                route_wants(
                    r,
                    source,
                    verdict.result,
                    previous.as_ref().map(|p| p.result.as_str()),
                )
            })
            .collect();
        let msg = message(source, project, correlation_id, &verdict, record);
        let mut failures = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let effect = Effect::Notify {
                subject,
                route: i,
                provider: &route.provider,
                url_parameter: &route.url_parameter,
            };
            holder
                .deadline
                .require(deps.notify_budget(), "send a chat message")?;
            let lease = match deps.records.acquire(&effect, holder).await? {
                Acquired::Won(lease) => lease,
                Acquired::Done => continue,
                Acquired::Busy { holder: other, .. } => {
                    failures.push(format!("{}: being sent by {other}", route.provider));
                    continue;
                }
            };
            match notify(deps, route, &msg, holder.deadline).await {
                Ok(()) => {
                    deps.records.complete(lease, holder).await?;
                    report.notified += 1;
                }
                Err(reason) => {
                    deps.records.release(lease).await?;
                    tracing::warn!(correlation_id, provider = %route.provider, reason = %reason, "chat notification failed");
                    failures.push(format!("{}: {reason}", route.provider));
                }
            }
        }
        if !failures.is_empty() {
            return Err(HandlerError::Notify {
                failed: failures.len(),
                routes: routes.len(),
                reasons: failures.join("; "),
            });
        }
    }

    // The branch's memory and badge, after a build's end.
    if verdict.is_final
        && is_build_result(verdict.result)
        && let Some(record) = record
    {
        deps.records
            .put_last_result(
                project,
                &group,
                &LastResult {
                    result: verdict.result.label().to_owned(),
                    build_id: record.build_id.clone(),
                    commit_sha: source.commit_sha.clone(),
                },
            )
            .await?;
        if let Some((key, branch)) = badge_of(deps, source).await? {
            let state = match verdict.state {
                StatusState::Success => BadgeState::Passing,
                StatusState::Failure => BadgeState::Failing,
                _ => BadgeState::Error,
            };
            deps.records
                .put_badge(&key, badge::svg(branch, state))
                .await?;
        }
    }
    Ok(report)
}

/// The badge a build of `source` updates, if any (a branch's, not a pull
/// request's): its key (private for a private repository unless listed)
/// and the branch.
async fn badge_of<'s>(
    deps: &Deps,
    source: &'s BuildSource,
) -> Result<Option<(String, &'s str)>, HandlerError> {
    let (None, Some(branch)) = (&source.pull_request, &source.branch) else {
        return Ok(None);
    };
    let config = deps.config.get().await?;
    let listed = config
        .repository(&source.repository.full_name)
        .is_some_and(|r| r.public_badge);
    let key = badge::key_for(
        &source.repository.full_name,
        branch,
        source.repository.private,
        listed,
    );
    Ok(Some((key, branch)))
}

/// Why a skip's `success` was not posted.
pub const SKIP_KEPT_OUT: &str =
    "a build's status is on this commit and context; a skip never replaces it";

/// Posts `status`, unless it is a skip's and something else (a build, a
/// rejection, a hold) already has a status on the same commit and context:
/// a skip never turns a commit green over a build's result. `Ok(false)`
/// when the skip was kept out.
async fn post_unless_built(
    deps: &Deps,
    commit: &Effect<'_>,
    subject: &str,
    verdict: &Verdict,
    source: &BuildSource,
    status: &CommitStatus,
) -> Result<bool, HandlerError> {
    if verdict.result == BuildResult::Skipped {
        if !deps.records.skip_may_post(commit, subject).await? {
            return Ok(false);
        }
    } else {
        deps.records.mark_build_on_commit(commit, subject).await?;
    }
    post_status(
        deps,
        &source.repository.full_name,
        &source.commit_sha,
        status,
    )
    .await?;
    Ok(true)
}

/// Posts one commit status with the GitHub token.
pub async fn post_status(
    deps: &Deps,
    repo: &str,
    sha: &str,
    status: &CommitStatus,
) -> Result<(), HandlerError> {
    let tokens = deps.token.get().await.map_err(HandlerError::Token)?;
    let Some(token) = tokens.first() else {
        return Err(HandlerError::Token(SecretError::NotConfigured {
            names: "GitHub token".into(),
        }));
    };
    deps.github.create_status(repo, sha, status, token).await?;
    Ok(())
}

async fn notify(
    deps: &Deps,
    route: &Route,
    message: &Message,
    deadline: Deadline,
) -> Result<(), String> {
    let provider = Provider::from_str(&route.provider).map_err(|e| e.to_string())?;
    let urls = deps
        .chat_urls
        .cache(&route.url_parameter)
        .await
        .get()
        .await
        .map_err(|e| e.to_string())?;
    let url = urls
        .first()
        .ok_or_else(|| format!("{} is empty", route.url_parameter))?;
    deps.notifier
        .send_before(provider, url, message, Some(deadline))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
