//! The reconcile Lambda, every few minutes: CodeBuild's events to
//! EventBridge are best effort, so this looks at the recent builds of
//! Gantry's projects (`BatchGetBuilds`) and finishes any that ended without
//! their final status: status, messages, record, badge, exactly as
//! build-events would. Both claim the same effects, so running both never
//! posts twice.
//!
//! Each run also asks GitHub to redeliver the webhook deliveries it lost
//! ([`redeliver`]); that step failing (GitHub down) never keeps builds
//! from being finished, and is logged and counted in the [`Summary`].

pub mod redeliver;

use std::time::Duration;

use aws_sdk_codebuild::types::Build;
use gantry_aws::codebuild::state_change_detail;
use gantry_aws::describe_sdk_error;
use gantry_aws::report::{Reporter, ReporterSettings, finish};
use gantry_core::codebuild_events::BuildStatus;
use gantry_core::deadline::Deadline;
use gantry_core::ids::BuildId;
use gantry_core::records::{Effect, Holder};
use gantry_core::settings::Env;
use redeliver::{RedeliverSettings, Redeliverer, redeliver_lost};

pub use gantry_core::settings::SettingsError;

#[derive(Debug, Clone)]
pub struct Settings {
    /// What reports a build (as build-events does).
    pub reporter: ReporterSettings,
    /// Projects to look at besides those gantry.yaml names.
    pub projects: Vec<String>,
    /// Recent builds looked at per project.
    pub builds_per_project: usize,
    /// Redelivering what GitHub lost.
    pub redeliver: RedeliverSettings,
}

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(&var);
        let list = |name: &str| env.list(name).unwrap_or_default();
        // The trust domains' projects (template.yaml), and any named outright.
        let prefix = env.or(
            "PROJECT_PREFIX",
            gantry_core::config::DEFAULT_PROJECT_PREFIX,
        );
        let mut projects: Vec<String> = list("TRUST_DOMAINS")
            .iter()
            .map(|d| format!("{prefix}{d}"))
            .collect();
        for p in list("PROJECTS") {
            if !projects.contains(&p) {
                projects.push(p);
            }
        }
        let builds_per_project = env.number("BUILDS_PER_PROJECT", 50usize)?.clamp(1, 100);
        let redeliver = RedeliverSettings::from_env(&env)?;
        Ok(Settings {
            reporter: ReporterSettings::from_env(&var)?,
            projects,
            builds_per_project,
            redeliver,
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        let reporter = self.reporter.reporter(sdk);
        Deps {
            codebuild: reporter.codebuild.clone(),
            reporter,
            projects: self.projects.clone(),
            builds_per_project: self.builds_per_project,
            redeliverer: Redeliverer::new(self.redeliver.clone()),
        }
    }
}

pub struct Deps {
    pub codebuild: aws_sdk_codebuild::Client,
    pub reporter: Reporter,
    pub projects: Vec<String>,
    pub builds_per_project: usize,
    pub redeliverer: Redeliverer,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Config(#[from] gantry_aws::config_source::ConfigError),
    #[error("CodeBuild {action} {project}: {reason}")]
    CodeBuild {
        action: &'static str,
        project: String,
        reason: String,
    },
    #[error("{failed} builds could not be finished; first: {first}")]
    Finish { failed: usize, first: String },
}

impl gantry_core::failure::ErrorKind for ReconcileError {
    fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Config(_) => "reconcile.ConfigUnavailable",
            ReconcileError::CodeBuild { .. } => "reconcile.CodeBuildUnavailable",
            ReconcileError::Finish { .. } => "reconcile.BuildsNotFinished",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub looked_at: usize,
    /// Builds whose final status this run posted.
    pub finished: Vec<String>,
    /// Deliveries (their guids, GitHub's `X-GitHub-Delivery`) this run
    /// asked GitHub to redeliver.
    pub redelivered: Vec<String>,
    /// What failed in asking for redeliveries (no credential in them);
    /// the run is not failed for them.
    pub redelivery_failures: Vec<String>,
}

/// The function's `Timeout` in template.yaml (a test holds them equal):
/// what a local driver gives a run.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// Looks at the recent builds of every project and finishes the ones that
/// ended unreported.
pub async fn reconcile(deps: &Deps) -> Result<Summary, ReconcileError> {
    reconcile_until(deps, Deadline::after(TIMEOUT)).await
}

/// One run, whose effects are claimed only while `deadline` leaves time to
/// carry them out; builds it had no time for are left to the next run.
pub async fn reconcile_until(deps: &Deps, deadline: Deadline) -> Result<Summary, ReconcileError> {
    let holder = Holder {
        id: format!("reconcile@{}", deadline.epoch_ms()),
        deadline,
    };
    let mut summary = Summary::default();
    let config = deps.reporter.config.get().await;
    // Each step boxed: their futures are large (every SDK call's state),
    // and a caller awaiting a run inline (a test, `gantry dev`) holds
    // this one on its own stack.
    let finished = match &config {
        Ok(config) => Box::pin(finish_builds(deps, &holder, config, &mut summary)).await,
        Err(_) => Ok(()),
    };
    // Whatever became of the builds: a lost delivery is a build never
    // started, and GitHub keeps it for three days only.
    let repositories: Vec<String> = config
        .as_ref()
        .map(|c| c.repositories.iter().map(|r| r.name.clone()).collect())
        .unwrap_or_default();
    let redelivery = Box::pin(redeliver_lost(
        &deps.redeliverer,
        &deps.reporter,
        &holder,
        &repositories,
    ))
    .await;
    summary.redelivered = redelivery.redelivered;
    summary.redelivery_failures = redelivery.failures;
    tracing::info!(
        looked_at = summary.looked_at,
        finished = summary.finished.len(),
        builds_failed = finished.is_err() || config.is_err(),
        redelivered = summary.redelivered.len(),
        redelivery_failures = summary.redelivery_failures.len(),
        outcome = "reconciled",
        "reconcile"
    );
    config?;
    finished?;
    Ok(summary)
}

/// Finishes the ended, unreported builds of the projects.
async fn finish_builds(
    deps: &Deps,
    holder: &Holder,
    config: &gantry_core::config::Config,
    summary: &mut Summary,
) -> Result<(), ReconcileError> {
    let mut projects: Vec<String> = deps.projects.clone();
    for r in &config.repositories {
        if !projects.contains(&r.project) {
            projects.push(r.project.clone());
        }
    }
    let mut failures = Vec::new();
    for project in &projects {
        let listed = deps
            .codebuild
            .list_builds_for_project()
            .project_name(project)
            .sort_order(aws_sdk_codebuild::types::SortOrderType::Descending)
            .send()
            .await;
        let ids: Vec<String> = match listed {
            Ok(out) => out
                .ids()
                .iter()
                .take(deps.builds_per_project)
                .cloned()
                .collect(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                continue;
            }
            Err(e) => {
                return Err(ReconcileError::CodeBuild {
                    action: "ListBuildsForProject",
                    project: project.clone(),
                    reason: describe_sdk_error(&e),
                });
            }
        };
        if ids.is_empty() {
            continue;
        }
        let builds = deps
            .codebuild
            .batch_get_builds()
            .set_ids(Some(ids))
            .send()
            .await
            .map_err(|e| ReconcileError::CodeBuild {
                action: "BatchGetBuilds",
                project: project.clone(),
                reason: describe_sdk_error(&e),
            })?;
        for build in builds.builds() {
            summary.looked_at += 1;
            let done = build
                .build_status()
                .is_some_and(|s| BuildStatus::parse(s.as_str()).is_final());
            let Some(id) = build.id().map(BuildId::new) else {
                continue;
            };
            if !done {
                continue;
            }
            match finish_one(deps, holder, &id, build).await {
                Ok(true) => summary.finished.push(id.into_string()),
                Ok(false) => {}
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
    }
    if let Some(first) = failures.first() {
        return Err(ReconcileError::Finish {
            failed: failures.len(),
            first: first.clone(),
        });
    }
    Ok(())
}

/// `Ok(true)` when this run posted the build's final status.
async fn finish_one(
    deps: &Deps,
    holder: &Holder,
    id: &BuildId,
    build: &Build,
) -> Result<bool, String> {
    let records = &deps.reporter.records;
    let Some(mut record) = records.build(id).await.map_err(|e| e.to_string())? else {
        return Ok(false); // not a Gantry build
    };
    if record.superseded_by.is_some()
        || records
            .claimed(&Effect::Status {
                subject: &record.build_id,
                state: None,
            })
            .await
            .map_err(|e| e.to_string())?
    {
        return Ok(false);
    }
    let detail = state_change_detail(build);
    let report = finish(&deps.reporter, holder, &mut record, &detail)
        .await
        .map_err(|e| e.to_string())?;
    if report.posted.is_some() {
        tracing::info!(
            correlation_id = %record.correlation_id,
            build_id = %id,
            outcome = "finished late",
            "reconcile"
        );
    }
    Ok(report.posted.is_some())
}
