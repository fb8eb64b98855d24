//! Claim, start, register, announce, supersede.

use gantry_aws::bus::{EventBus, PublishError};
use gantry_aws::records::Records;
use gantry_core::events::{
    BuildHeld, BuildRejected, BuildStarted, BuildSuperseded, HoldCode, RejectedAt, SecretsResolved,
    SupersededBy, VERSION, cap,
};
use gantry_core::ids::BuildId;
use gantry_core::records::BuildRecord;

use std::time::Duration;

use gantry_core::deadline::Deadline;

use crate::Retry;
use crate::codebuild::{self, Request, StartError, Started, Stopped};
use crate::store::{
    Claimed, GroupEntry, StartRecord, StartState, Store, StoreError, group_prefix, start_token,
};

pub struct Deps {
    pub codebuild: aws_sdk_codebuild::Client,
    pub store: Store,
    /// The build records build-events completes (`builds/<project>/<id>.json`).
    pub records: Records,
    pub bus: EventBus,
    pub untrusted_role_arn: Option<String>,
    pub github_connection_arn: Option<String>,
    /// For the console link.
    pub region: String,
    pub retry: Retry,
    /// What gantry.yaml may ask builds to run on.
    pub limits: crate::codebuild::ComputeLimits,
    /// The longest an AWS call may take (the SDK's operation timeout).
    pub aws_timeout: Duration,
}

/// What became of a `Secrets Resolved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Started(Box<BuildStarted>),
    /// A newer commit of the same branch or pull request came first.
    Superseded(Box<BuildSuperseded>),
    Rejected(Box<BuildRejected>),
    /// Already handled: a replay of the event, or of the delivery.
    Duplicate {
        build_id: Option<BuildId>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Start(StartError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl gantry_core::failure::ErrorKind for HandlerError {
    fn kind(&self) -> &'static str {
        match self {
            HandlerError::Store(_) => "start-build.S3Unavailable",
            HandlerError::Start(StartError::Capacity(_)) => "start-build.CodeBuildAtCapacity",
            HandlerError::Start(StartError::Refused(_)) => "start-build.CodeBuildRefused",
            HandlerError::Start(StartError::Unavailable(_)) => "start-build.CodeBuildUnavailable",
            HandlerError::Publish(_) => "start-build.EventBridgeUnavailable",
        }
    }
}

fn rejected(event: &SecretsResolved, reason: String) -> BuildRejected {
    BuildRejected {
        v: VERSION,
        correlation_id: event.correlation_id.clone(),
        project: event.project.clone(),
        source: event.source.clone(),
        stage: RejectedAt::Start,
        reason: cap(&reason, 1024),
        buildspec_location: Some(event.buildspec.location.clone()),
        diagnostics: Vec::new(),
        diagnostic_count: 0,
        secrets: Vec::new(),
    }
}

fn superseded(entry_source: &GroupEntry, by: &GroupEntry, project: &str) -> BuildSuperseded {
    BuildSuperseded {
        v: VERSION,
        correlation_id: entry_source.correlation_id.clone(),
        project: project.to_owned(),
        source: entry_source.source.clone(),
        build_id: Some(entry_source.build_id.clone()).filter(|id| !id.is_empty()),
        superseded_by: SupersededBy {
            commit_sha: by.source.commit_sha.clone(),
            correlation_id: by.correlation_id.clone(),
        },
    }
}

/// The function's `Timeout` in template.yaml (a test holds them equal):
/// what a local driver gives an invocation.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// Starts the build for `event` once, however often the event arrives,
/// with the time a Lambda invocation of [`TIMEOUT`] would have.
pub async fn handle(deps: &Deps, event: SecretsResolved) -> Result<Outcome, HandlerError> {
    handle_until(deps, event, Deadline::after(TIMEOUT)).await
}

/// Starts the build for `event` once; CodeBuild at its limit is asked
/// again only while `deadline` leaves time to report the outcome.
pub async fn handle_until(
    deps: &Deps,
    event: SecretsResolved,
    deadline: Deadline,
) -> Result<Outcome, HandlerError> {
    let correlation_id = event.correlation_id.clone();
    let result = run(deps, &event, deadline).await;
    match &result {
        Ok(Outcome::Started(s)) => tracing::info!(
            correlation_id = %correlation_id,
            repo = %s.source.repository.full_name,
            commit = %s.source.commit_sha,
            build_id = %s.build_id,
            trusted = s.trusted,
            outcome = "started",
            "build"
        ),
        Ok(Outcome::Superseded(s)) => tracing::info!(
            correlation_id = %correlation_id,
            commit = %s.source.commit_sha,
            superseded_by = %s.superseded_by.commit_sha,
            outcome = "superseded",
            "build"
        ),
        Ok(Outcome::Rejected(r)) => tracing::info!(
            correlation_id = %correlation_id,
            commit = %r.source.commit_sha,
            reason = %r.reason,
            outcome = "rejected",
            "build"
        ),
        Ok(Outcome::Duplicate { build_id }) => tracing::info!(
            correlation_id = %correlation_id,
            build_id = build_id.as_deref().unwrap_or(""),
            outcome = "duplicate",
            "build"
        ),
        Err(e) => tracing::error!(
            correlation_id = %correlation_id,
            error = %e,
            "build not started; EventBridge will retry"
        ),
    }
    result
}

async fn run(
    deps: &Deps,
    event: &SecretsResolved,
    deadline: Deadline,
) -> Result<Outcome, HandlerError> {
    let token = start_token(&event.correlation_id, &event.project);
    let starting = StartRecord {
        state: StartState::Starting,
        correlation_id: event.correlation_id.clone(),
        build_id: None,
        build_arn: None,
        announced: false,
    };
    let prefix = group_prefix(&event.project, &event.source.group());
    let started = match deps.store.claim(&token, &starting).await? {
        Claimed::Existing(record) => match record.state {
            StartState::Started if record.announced => {
                return Ok(Outcome::Duplicate {
                    build_id: record.build_id,
                });
            }
            // Started, but the previous attempt ended before announcing it.
            StartState::Started => Started {
                id: record.build_id.unwrap_or_default(),
                arn: record.build_arn.unwrap_or_default(),
                number: None,
                logs_url: None,
            },
            StartState::Superseded | StartState::Rejected => {
                return Ok(Outcome::Duplicate { build_id: None });
            }
            // A previous attempt claimed and may or may not have started:
            // CodeBuild's idempotency token makes asking again safe.
            StartState::Starting => match start(deps, event, &token, &prefix, deadline).await? {
                Ok(started) => started,
                Err(outcome) => return Ok(outcome),
            },
        },
        Claimed::New => match start(deps, event, &token, &prefix, deadline).await? {
            Ok(started) => started,
            Err(outcome) => return Ok(outcome),
        },
    };
    announce(deps, event, &token, &prefix, started).await
}

/// Starts the build, unless a newer commit of the group came first or
/// CodeBuild refuses for good; those end the event (`Err(outcome)`).
async fn start(
    deps: &Deps,
    event: &SecretsResolved,
    token: &str,
    prefix: &str,
    deadline: Deadline,
) -> Result<Result<Started, Outcome>, HandlerError> {
    if event.cancel_superseded {
        let group = deps.store.group(prefix).await?;
        // Ordered by the time GitHub signed into each delivery, so a
        // replayed old delivery (fresh only in its arrival) is the older.
        let newer = group.into_iter().map(|(_, e)| e).find(|e| {
            e.source.order() > event.source.order() && e.correlation_id != event.correlation_id
        });
        if let Some(newer) = newer {
            let ours = entry(event, token, "");
            let notice = superseded(&ours, &newer, &event.project);
            deps.bus.publish(&notice).await?;
            deps.store
                .record(token, &record(event, StartState::Superseded, None, false))
                .await?;
            return Ok(Err(Outcome::Superseded(Box::new(notice))));
        }
    }
    let request = Request {
        event,
        token,
        bucket: deps.store.bucket(),
        untrusted_role_arn: deps.untrusted_role_arn.as_deref(),
        github_connection_arn: deps.github_connection_arn.as_deref(),
    };
    // Compute, image or timeout beyond the operator's lists: rejected
    // before CodeBuild is asked, with the list in the reason.
    let refusal = match deps.limits.check(&event.source.compute) {
        Err(reason) => reason,
        Ok(()) => match start_with_retries(deps, &request, event, token, deadline).await? {
            Ok(started) => return Ok(Ok(started)),
            Err(reason) => reason,
        },
    };
    let notice = rejected(event, refusal);
    deps.bus.publish(&notice).await?;
    deps.store
        .record(token, &record(event, StartState::Rejected, None, false))
        .await?;
    Ok(Err(Outcome::Rejected(Box::new(notice))))
}

/// Asks CodeBuild to start the build, holding it as queued and asking
/// again while CodeBuild is at its limit and the deadline allows: the
/// build started (and recorded), or why it will not start.
async fn start_with_retries(
    deps: &Deps,
    request: &Request<'_>,
    event: &SecretsResolved,
    token: &str,
    deadline: Deadline,
) -> Result<Result<Started, String>, HandlerError> {
    let mut attempt = 0;
    let refusal = loop {
        attempt += 1;
        match codebuild::start(&deps.codebuild, request).await {
            Ok(started) => {
                deps.store
                    .record(
                        token,
                        &record(event, StartState::Started, Some(&started), false),
                    )
                    .await?;
                return Ok(Ok(started));
            }
            Err(StartError::Capacity(reason)) if attempt < deps.retry.attempts => {
                if attempt == 1 {
                    let held = BuildHeld {
                        v: VERSION,
                        correlation_id: event.correlation_id.clone(),
                        project: event.project.clone(),
                        source: event.source.clone(),
                        code: HoldCode::Queued,
                        message: "queued: CodeBuild is at its concurrent build limit; retrying"
                            .into(),
                    };
                    deps.bus.publish(&held).await?;
                }
                let wait = deps.retry.delay(attempt);
                // Another attempt, then the rejection's publication and
                // record, must fit before Lambda ends the invocation: a
                // commit is never left "queued" by a killed invocation.
                if !deadline.covers(wait + deps.aws_timeout.saturating_mul(4)) {
                    break format!(
                        "CodeBuild stayed at its build limit for as long as Gantry could wait ({attempt} attempts): {reason}"
                    );
                }
                tracing::warn!(
                    correlation_id = %event.correlation_id,
                    attempt,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    reason = %reason,
                    "CodeBuild at its limit; retrying"
                );
                tokio::time::sleep(wait).await;
            }
            Err(StartError::Capacity(reason)) => {
                break format!(
                    "CodeBuild stayed at its build limit after {attempt} attempts: {reason}"
                );
            }
            Err(StartError::Refused(reason)) => {
                break format!("CodeBuild refused the build: {reason}");
            }
            Err(e @ StartError::Unavailable(_)) => {
                // Let the retry start afresh; the token keeps a build that
                // did start from starting twice.
                deps.store.release(token).await?;
                return Err(HandlerError::Start(e));
            }
        }
    };
    Ok(Err(refusal))
}

fn record(
    event: &SecretsResolved,
    state: StartState,
    started: Option<&Started>,
    announced: bool,
) -> StartRecord {
    StartRecord {
        state,
        correlation_id: event.correlation_id.clone(),
        build_id: started.map(|s| s.id.clone()),
        build_arn: started.map(|s| s.arn.clone()),
        announced,
    }
}

fn entry(event: &SecretsResolved, token: &str, build_id: &str) -> GroupEntry {
    GroupEntry {
        token: token.to_owned(),
        build_id: build_id.to_owned().into(),
        correlation_id: event.correlation_id.clone(),
        received_at_ms: event.source.received_at_ms,
        source: event.source.clone(),
    }
}

/// Registers the build in its group, publishes `Build Started`, then stops
/// what it supersedes.
async fn announce(
    deps: &Deps,
    event: &SecretsResolved,
    token: &str,
    prefix: &str,
    started: Started,
) -> Result<Outcome, HandlerError> {
    if event.cancel_superseded {
        deps.store
            .register(prefix, &entry(event, token, &started.id))
            .await?;
    }
    let notice = BuildStarted {
        v: VERSION,
        correlation_id: event.correlation_id.clone(),
        project: event.project.clone(),
        source: event.source.clone(),
        build_url: codebuild::console_url(&deps.region, &started.arn, &event.project, &started.id),
        build_id: started.id.clone(),
        build_arn: started.arn.clone(),
        build_number: started.number,
        logs_url: started.logs_url.clone(),
        buildspec_digest: event.buildspec.digest.clone(),
        secrets: event.secrets.clone(),
        trusted: event.trusted,
        withheld: event.withheld.clone(),
    };
    // The record first: build-events reads it to report the build's end,
    // which may come before this event is consumed.
    deps.records
        .put_build(&BuildRecord {
            v: VERSION,
            build_id: notice.build_id.clone(),
            build_arn: notice.build_arn.clone(),
            project: notice.project.clone(),
            correlation_id: notice.correlation_id.clone(),
            source: notice.source.clone(),
            build_url: notice.build_url.clone(),
            logs_url: notice.logs_url.clone(),
            trusted: notice.trusted,
            withheld: notice.withheld.clone(),
            secrets: notice.secrets.clone(),
            started_at_ms: gantry_core::events::now_ms(),
            finished: None,
            superseded_by: None,
            buildspec_digest: Some(notice.buildspec_digest.clone()),
            buildspec_location: Some(event.buildspec.location.clone()),
        })
        .await?;
    deps.bus.publish(&notice).await?;
    deps.store
        .record(
            token,
            &record(event, StartState::Started, Some(&started), true),
        )
        .await?;
    if event.cancel_superseded {
        // Best effort: the build is started and announced; a failure here
        // leaves an older build running, which its own completion reports.
        if let Err(e) = supersede(deps, event, prefix).await {
            tracing::warn!(
                correlation_id = %event.correlation_id,
                error = %e,
                "could not stop the builds this one supersedes"
            );
        }
    }
    Ok(Outcome::Started(Box::new(notice)))
}

/// Stops every build of the group but the newest, and reports each one
/// stopped. Every start-build of the group runs this after registering, so
/// whichever of two concurrent starts looks last sees both.
async fn supersede(deps: &Deps, event: &SecretsResolved, prefix: &str) -> Result<(), HandlerError> {
    let group = deps.store.group(prefix).await?;
    let Some((_, newest)) = group.last() else {
        return Ok(());
    };
    let newest = newest.clone();
    for (key, older) in &group[..group.len() - 1] {
        if older.source.commit_sha == newest.source.commit_sha {
            // The same commit built again (a re-run): not superseded.
            continue;
        }
        match codebuild::stop(&deps.codebuild, &older.build_id).await {
            Ok(Stopped::Stopped) => {
                let notice = superseded(older, &newest, &event.project);
                deps.bus.publish(&notice).await?;
                tracing::info!(
                    correlation_id = %older.correlation_id,
                    build_id = %older.build_id,
                    superseded_by = %newest.source.commit_sha,
                    outcome = "stopped",
                    "build superseded"
                );
            }
            Ok(Stopped::NotRunning) => {}
            Err(reason) => {
                tracing::warn!(build_id = %older.build_id, reason, "StopBuild failed; will try again on the next build");
                continue;
            }
        }
        deps.store.forget(key).await?;
    }
    Ok(())
}
