//! From an event to a report: Gantry's own events and CodeBuild's, each
//! turned into a verdict (`gantry_core::status`) that `gantry_aws::report`
//! carries out.

use std::time::Duration;

use gantry_aws::report::{
    Report, ReportError, Reporter, badge_of, deliver, finish, status_settings,
};
use gantry_core::badge::{self, BadgeState};
use gantry_core::codebuild_events::{self, CodeBuildDetail};
use gantry_core::deadline::Deadline;
use gantry_core::events::{
    BuildHeld, BuildRejected, BuildSkipped, BuildStarted, BuildSuperseded, SOURCE,
};
use gantry_core::records::Holder;
use gantry_core::status;

/// The errors of build-events: those of reporting.
pub type HandlerError = ReportError;

pub struct Deps {
    /// Posts statuses, tells the chats, keeps records and badges.
    pub reporter: Reporter,
    /// Finds the commit of a CodePipeline execution.
    pub codepipeline: aws_sdk_codepipeline::Client,
}

/// The function's `Timeout` in template.yaml (a test holds them equal):
/// what a local driver gives an invocation.
pub const TIMEOUT: Duration = Duration::from_secs(300);

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
                &deps.reporter,
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
                &deps.reporter,
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
                &deps.reporter,
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
        &deps.reporter,
        holder,
        &e.correlation_id,
        &e.project,
        &e.source,
        status::started(e),
        None,
    )
    .await?;
    if report.posted.is_some()
        && let Some((key, branch)) = badge_of(&deps.reporter, &e.source).await?
    {
        deps.reporter
            .records
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
    let build_id = detail.build_id_short().to_owned();
    let Some(mut record) = deps.reporter.records.build(&build_id).await? else {
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
    finish(&deps.reporter, holder, &mut record, detail).await
}
