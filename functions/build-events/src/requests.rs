//! What people ask of Gantry's check runs on GitHub (App mode): Re-run,
//! Re-run all, and the buttons (Approve and build, Cancel), as the webhook
//! verified them into a `Check Run Requested`.
//!
//! - A re-run is a new build of the run's commit and project: the same
//!   source (a fork stays a fork, held again unless its approval still
//!   holds), the next attempt number, the delivery's correlation id. It
//!   goes through the whole chain again as a `Build Requested`, and GitHub
//!   gets a new run for it.
//! - A button acts only for someone who could push to the repository, as
//!   GitHub says when asked (the payload's sender is only who pressed);
//!   anyone else's press is answered in the run itself.

use gantry_aws::github::app::Permissions;
use gantry_aws::github::checks::CheckRun;
use gantry_aws::report::{ReportError, Reporter};
use gantry_core::events::{BuildRequested, CheckRequest, CheckRunRequested, VERSION};
use gantry_core::github::checks::{self, CheckState, CheckStatus, Conclusion, actions};
use gantry_core::records::{CheckRunRecord, check_run_key};

use crate::Report;
use crate::handler::Deps;

/// Carries out one request.
pub async fn requested(deps: &Deps, e: &CheckRunRequested) -> Result<Report, ReportError> {
    let reporter = &deps.reporter;
    if !reporter.credentials.is_app() {
        return Ok(kept("token mode: Gantry has no check runs to act on"));
    }
    match &e.request {
        CheckRequest::Rerun { external_id, .. } => {
            let Some(record) = run_record(reporter, e, external_id).await? else {
                return Ok(kept("not a run Gantry knows"));
            };
            rerun(deps, e, &record, e.correlation_id.as_str()).await?;
            Ok(Report::default())
        }
        CheckRequest::RerunSuite { check_suite_id } => {
            let token = reporter
                .credentials
                .required(e.installation_id, &e.repository, Permissions::READ_CHECKS)
                .await?;
            let runs = reporter
                .github
                .suite_check_runs(&e.repository, *check_suite_id, &token)
                .await?;
            let mut n = 0;
            for (_, external_id) in runs {
                let Some(record) = run_record(reporter, e, &external_id).await? else {
                    continue;
                };
                n += 1;
                // One delivery, a build per run: each its own correlation id.
                let correlation_id = format!("{}-{n}", e.correlation_id);
                rerun(deps, e, &record, &correlation_id).await?;
            }
            if n == 0 {
                return Ok(kept("the suite has no run Gantry knows"));
            }
            Ok(Report::default())
        }
        CheckRequest::Action {
            external_id,
            identifier,
            ..
        } => {
            let Some(record) = run_record(reporter, e, external_id).await? else {
                return Ok(kept("not a run Gantry knows"));
            };
            let Some(action) = actions::named(identifier) else {
                return Ok(kept("not one of Gantry's buttons"));
            };
            act(deps, e, record, action).await
        }
    }
}

fn kept(why: &'static str) -> Report {
    Report {
        unchanged: Some(why),
        ..Report::default()
    }
}

/// The record of the run `external_id` names, if it is a run of the
/// delivery's own repository: a run is only ever acted on from its own.
async fn run_record(
    reporter: &Reporter,
    e: &CheckRunRequested,
    external_id: &str,
) -> Result<Option<CheckRunRecord>, ReportError> {
    let Some((correlation_id, project)) = checks::parse_external_id(external_id) else {
        return Ok(None);
    };
    let record: Option<CheckRunRecord> = reporter
        .records
        .get_json(&check_run_key(correlation_id, project))
        .await?;
    Ok(record.filter(|r| {
        r.source
            .repository
            .full_name
            .eq_ignore_ascii_case(&e.repository)
    }))
}

/// A new build of the run's commit and project, as a `Build Requested`.
async fn rerun(
    deps: &Deps,
    e: &CheckRunRequested,
    record: &CheckRunRecord,
    correlation_id: &str,
) -> Result<(), ReportError> {
    let config = deps.reporter.config.get().await?;
    let rules = config.repository(&record.source.repository.full_name);
    // A named build re-runs with its own buildspec.
    let buildspec = match (rules, &record.source.member) {
        (Some(r), Some(m)) => r.member(&m.name).and_then(|m| m.buildspec.clone()),
        (Some(r), None) => r.buildspec.clone(),
        (None, _) => None,
    };
    let mut source = record.source.clone();
    source.attempt = source.attempt.saturating_add(1);
    source.received_at_ms = gantry_core::events::now_ms();
    let request = BuildRequested {
        v: VERSION,
        correlation_id: correlation_id.into(),
        project: record.project.clone(),
        buildspec,
        source,
        // A Re-run is asked for by hand: it builds whatever the paths.
        paths: None,
    };
    deps.bus.publish(&request).await?;
    tracing::info!(
        correlation_id = %correlation_id,
        rerun_of = %record.correlation_id,
        repo = %record.source.repository.full_name,
        commit = %record.source.commit_sha,
        attempt = request.source.attempt,
        by = %e.sender,
        outcome = "rerun",
        "re-run requested on GitHub"
    );
    Ok(())
}

/// A button: only for someone who could push, answered in the run.
async fn act(
    deps: &Deps,
    e: &CheckRunRequested,
    record: CheckRunRecord,
    action: &checks::Action,
) -> Result<Report, ReportError> {
    let reporter = &deps.reporter;
    let repo = &record.source.repository.full_name;
    let metadata = reporter
        .credentials
        .required(e.installation_id, repo, Permissions::READ_METADATA)
        .await?;
    let permission = reporter
        .github
        .permission(repo, &e.sender, &metadata)
        .await?;
    if !permission.can_push() {
        tracing::warn!(
            correlation_id = %e.correlation_id,
            repo = %repo,
            by = %e.sender,
            role = %permission.describe(),
            action = action.identifier,
            outcome = "refused",
            "a check run button pressed by someone who cannot push"
        );
        let message = format!(
            "@{} has the {} role on {repo}: only write, maintain or admin may {}.",
            e.sender,
            permission.describe(),
            action.label.to_lowercase()
        );
        answer(deps, e, &record, record.state, "not allowed", &message).await?;
        return Ok(kept("the sender cannot push"));
    }
    if action.identifier == actions::APPROVE.identifier {
        if record.state.conclusion != Some(Conclusion::ActionRequired) {
            return Ok(kept("nothing is held for approval"));
        }
        let mut approved = record.clone();
        if let Some(pr) = approved.source.pull_request.as_mut() {
            pr.approved_by = Some(e.sender.clone());
        }
        // validate-buildspec checks the approval again (the hold, the
        // approver's permission) before anything builds.
        rerun(deps, e, &approved, e.correlation_id.as_str()).await?;
        let message = format!(
            "Approved by @{}: the build runs as a new check run.",
            e.sender
        );
        let done = CheckState {
            status: CheckStatus::Completed,
            conclusion: Some(Conclusion::Neutral),
        };
        answer(deps, e, &record, done, "approved", &message).await?;
        return Ok(Report::default());
    }
    // Cancel: CodeBuild's STOPPED event completes the run as cancelled.
    let Some(build_id) = &record.build_id else {
        let message = "Nothing to cancel yet: the build has not started.";
        answer(deps, e, &record, record.state, "not started", message).await?;
        return Ok(kept("the build has not started"));
    };
    reporter
        .codebuild
        .stop_build()
        .id(build_id.as_str())
        .send()
        .await
        .map_err(|err| ReportError::CodeBuild {
            what: format!("stop {build_id}"),
            reason: gantry_aws::describe_sdk_error(&err),
        })?;
    tracing::info!(
        correlation_id = %record.correlation_id,
        build_id = %build_id,
        by = %e.sender,
        outcome = "cancelled",
        "build stopped from GitHub"
    );
    Ok(Report {
        stopped: Some(build_id.clone()),
        ..Report::default()
    })
}

/// Shows `message` in the run, in `state` (its buttons with it), and
/// records the state.
async fn answer(
    deps: &Deps,
    e: &CheckRunRequested,
    record: &CheckRunRecord,
    state: CheckState,
    title: &str,
    message: &str,
) -> Result<(), ReportError> {
    let reporter = &deps.reporter;
    let repo = &record.source.repository.full_name;
    let token = reporter
        .credentials
        .required(e.installation_id, repo, Permissions::WRITE_CHECKS)
        .await?;
    let external_id = checks::external_id(record.correlation_id.as_str(), &record.project);
    let buttons = checks::buttons(state);
    let summary = format!("**{title}**\n\n{message}\n");
    reporter
        .github
        .update_check_run(
            repo,
            record.id,
            &CheckRun {
                name: &record.name,
                head_sha: record.source.commit_sha.as_str(),
                state,
                external_id: &external_id,
                details_url: None,
                title,
                summary: &summary,
                text: None,
                annotations: &[],
                actions: &buttons,
            },
            &token,
        )
        .await?;
    if state != record.state {
        let mut changed = record.clone();
        changed.state = state;
        reporter
            .records
            .put_json(
                &check_run_key(record.correlation_id.as_str(), &record.project),
                &changed,
            )
            .await?;
    }
    Ok(())
}
