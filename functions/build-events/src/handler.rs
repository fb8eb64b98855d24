//! From an event to a report: Gantry's own events and CodeBuild's, each
//! turned into a verdict (`gantry_core::status`) that `gantry_aws::report`
//! carries out.

use std::time::Duration;

use gantry_aws::on_first_use::OnFirstUse;
use gantry_aws::report::{
    Ids, Report, ReportError, Reporter, badge_of, deliver, deliver_with, finish, queued,
    status_settings,
};
use gantry_core::badge::{self, BadgeState};
use gantry_core::codebuild_events::CodeBuildDetail;
use gantry_core::deadline::Deadline;
use gantry_core::events::{BuildSource, BuildStarted, BuildSuperseded};
use gantry_core::ids::CorrelationId;
use gantry_core::inbound::BuildEventsInput;
use gantry_core::records::Holder;
use gantry_core::status;

/// The errors of build-events: those of reporting.
pub type HandlerError = ReportError;

pub struct Deps {
    /// Posts statuses, tells the chats, keeps records and badges.
    pub reporter: Reporter,
    /// Finds the commit of a CodePipeline execution.
    pub codepipeline: OnFirstUse<aws_sdk_codepipeline::Client>,
    /// Where a re-run or an approval from GitHub goes on as a
    /// `Build Requested`.
    pub bus: gantry_aws::bus::EventBus,
}

/// The function's `Timeout` in template.yaml (a test holds them equal):
/// what a local driver gives an invocation.
pub const TIMEOUT: Duration = Duration::from_secs(300);

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
    let detail_type = event["detail-type"].as_str().unwrap_or_default();
    let report = match BuildEventsInput::read(event) {
        Err(e) => Err(HandlerError::Event(e.to_string())),
        Ok(None) => Ok(Report {
            unchanged: Some("not an event build-events reports"),
            ..Report::default()
        }),
        Ok(Some(input)) => handle_input(deps, holder, input).await,
    };
    if let Err(e) = &report {
        tracing::error!(
            correlation_id = event["detail"]["correlation_id"].as_str().unwrap_or_default(),
            detail_type,
            error = %e,
            "not reported; EventBridge will retry"
        );
    }
    report
}

/// Reports one event build-events reads.
pub async fn handle_input(
    deps: &Deps,
    holder: &Holder,
    input: BuildEventsInput,
) -> Result<Report, HandlerError> {
    match input {
        BuildEventsInput::Requested(e) => queued(&deps.reporter, holder, &e).await,
        BuildEventsInput::CheckRun(e) => crate::requests::requested(deps, &e).await,
        BuildEventsInput::Skipped(e) => {
            moment(
                deps,
                holder,
                (&e.correlation_id, &e.project, &e.source),
                status::skipped(&e),
            )
            .await
        }
        BuildEventsInput::Rejected(e) => {
            moment(
                deps,
                holder,
                (&e.correlation_id, &e.project, &e.source),
                status::rejected(&e),
            )
            .await
        }
        BuildEventsInput::Held(e) => {
            moment(
                deps,
                holder,
                (&e.correlation_id, &e.project, &e.source),
                status::held(&e),
            )
            .await
        }
        BuildEventsInput::Started(e) => started(deps, holder, &e).await,
        BuildEventsInput::Superseded(e) => superseded(deps, holder, &e).await,
        BuildEventsInput::CodeBuild(e) => codebuild(deps, holder, &e.detail).await,
        BuildEventsInput::PipelineExecution(event) => {
            crate::pipeline::execution_changed(deps, holder, &event).await
        }
    }
}

/// A moment of a build before it runs (skipped, rejected, held): its
/// status, and chat where routed.
async fn moment(
    deps: &Deps,
    holder: &Holder,
    (correlation_id, project, source): (&CorrelationId, &str, &BuildSource),
    verdict: status::Verdict,
) -> Result<Report, HandlerError> {
    deliver(
        &deps.reporter,
        holder,
        correlation_id,
        project,
        source,
        verdict,
        None,
    )
    .await
}

async fn started(deps: &Deps, holder: &Holder, e: &BuildStarted) -> Result<Report, HandlerError> {
    let report = deliver_with(
        &deps.reporter,
        holder,
        Ids {
            correlation_id: &e.correlation_id,
            project: &e.project,
            build_id: Some(&e.build_id),
            buildspec_digest: Some(&e.buildspec_digest),
        },
        &e.source,
        status::started(e),
        None,
        None,
    )
    .await?;
    if report.posted.is_some()
        && let Some(b) = badge_of(&deps.reporter, &e.source, BadgeState::Running).await?
    {
        deps.reporter
            .records
            .put_badge(&b.key, badge::svg(&b.branch, b.state))
            .await?;
    }
    Ok(report)
}

async fn superseded(
    deps: &Deps,
    holder: &Holder,
    e: &BuildSuperseded,
) -> Result<Report, HandlerError> {
    let rules = status_settings(&deps.reporter, &e.source).await?;
    if let Some(build_id) = &e.build_id
        && let Some(mut record) = deps.reporter.records.build(build_id).await?
    {
        record.superseded_by = Some(e.superseded_by.clone());
        deps.reporter.records.put_build(&record).await?;
    }
    let verdict = status::superseded(e, rules.superseded);
    deliver(
        &deps.reporter,
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
    let build_id = detail.build_id();
    let Some(mut record) = deps.reporter.records.build(&build_id).await? else {
        if detail.variable("GANTRY_DELIVERY_ID").is_some() {
            return Err(HandlerError::NoRecord {
                build_id: build_id.to_string(),
            });
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
    finish(&deps.reporter, holder, &mut record, detail).await
}
