//! The reconcile Lambda, every few minutes: CodeBuild's events to
//! EventBridge are best effort, so this looks at the recent builds of
//! Gantry's projects (`BatchGetBuilds`) and finishes any that ended without
//! their final status: status, messages, record, badge, exactly as
//! build-events would. Both claim the same effects, so running both never
//! posts twice.

use aws_sdk_codebuild::types::Build;
use gantry_aws::describe_sdk_error;
use gantry_core::codebuild_events;
use gantry_core::deadline::Deadline;
use gantry_core::records::{Effect, Holder};
use gantry_core::settings::Env;

pub use gantry_core::settings::SettingsError;

#[derive(Debug, Clone)]
pub struct Settings {
    pub build_events: gantry_build_events::Settings,
    /// Projects to look at besides those gantry.yaml names.
    pub projects: Vec<String>,
    /// Recent builds looked at per project.
    pub builds_per_project: usize,
}

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(&var);
        let list = |name: &str| -> Vec<String> {
            env.get(name)
                .map(|p| {
                    p.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
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
        Ok(Settings {
            build_events: gantry_build_events::Settings::from_env(&var)?,
            projects,
            builds_per_project,
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        Deps {
            codebuild: aws_sdk_codebuild::Client::new(sdk),
            events: self.build_events.deps(sdk),
            projects: self.projects.clone(),
            builds_per_project: self.builds_per_project,
        }
    }
}

pub struct Deps {
    pub codebuild: aws_sdk_codebuild::Client,
    pub events: gantry_build_events::Deps,
    pub projects: Vec<String>,
    pub builds_per_project: usize,
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

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub looked_at: usize,
    /// Builds whose final status this run posted.
    pub finished: Vec<String>,
}

/// A build as CodeBuild's `Build State Change` event describes it, so the
/// one code path that reports events reports this too.
pub fn state_change_event(build: &Build) -> serde_json::Value {
    let variables =
        |vars: &[aws_sdk_codebuild::types::EnvironmentVariable]| -> Vec<serde_json::Value> {
            vars.iter()
                .map(|v| {
                    serde_json::json!({
                        "name": v.name(),
                        "value": v.value(),
                        "type": v.r#type().map(|t| t.as_str()).unwrap_or("PLAINTEXT"),
                    })
                })
                .collect()
        };
    let phases: Vec<serde_json::Value> = build
        .phases()
        .iter()
        .map(|p| {
            serde_json::json!({
                "phase-type": p.phase_type().map(|t| t.as_str()),
                "phase-status": p.phase_status().map(|s| s.as_str()),
                "duration-in-seconds": p.duration_in_seconds(),
            })
        })
        .collect();
    let exported: Vec<serde_json::Value> = build
        .exported_environment_variables()
        .iter()
        .map(|v| serde_json::json!({ "name": v.name(), "value": v.value() }))
        .collect();
    serde_json::json!({
        "version": "0",
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "resources": [build.arn()],
        "detail": {
            "build-status": build.build_status().map(|s| s.as_str()),
            "project-name": build.project_name(),
            "build-id": build.arn().or(build.id()),
            "current-phase": build.current_phase(),
            "additional-information": {
                "build-complete": build.build_complete(),
                "initiator": build.initiator(),
                "environment": {
                    "environment-variables": build.environment().map(|e| variables(e.environment_variables())).unwrap_or_default(),
                },
                "phases": phases,
                "logs": { "deep-link": build.logs().and_then(|l| l.deep_link()) },
                "exported-environment-variables": exported,
            },
        },
    })
}

/// Looks at the recent builds of every project and finishes the ones that
/// ended unreported.
pub async fn reconcile(deps: &Deps) -> Result<Summary, ReconcileError> {
    reconcile_until(deps, Deadline::after(gantry_build_events::TIMEOUT)).await
}

/// One run, whose effects are claimed only while `deadline` leaves time to
/// carry them out; builds it had no time for are left to the next run.
pub async fn reconcile_until(deps: &Deps, deadline: Deadline) -> Result<Summary, ReconcileError> {
    let holder = Holder {
        id: format!("reconcile@{}", deadline.epoch_ms()),
        deadline,
    };
    let config = deps.events.config.get().await?;
    let mut projects: Vec<String> = deps.projects.clone();
    for r in &config.repositories {
        if !projects.contains(&r.project) {
            projects.push(r.project.clone());
        }
    }
    let mut summary = Summary::default();
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
                .is_some_and(|s| s.as_str() != "IN_PROGRESS");
            let Some(id) = build.id() else { continue };
            if !done {
                continue;
            }
            match finish_one(deps, &holder, id, build).await {
                Ok(true) => summary.finished.push(id.to_owned()),
                Ok(false) => {}
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
    }
    tracing::info!(
        looked_at = summary.looked_at,
        finished = summary.finished.len(),
        failed = failures.len(),
        outcome = "reconciled",
        "reconcile"
    );
    if let Some(first) = failures.first() {
        return Err(ReconcileError::Finish {
            failed: failures.len(),
            first: first.clone(),
        });
    }
    Ok(summary)
}

/// `Ok(true)` when this run posted the build's final status.
async fn finish_one(deps: &Deps, holder: &Holder, id: &str, build: &Build) -> Result<bool, String> {
    let records = &deps.events.records;
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
    let event = state_change_event(build);
    let parsed = codebuild_events::parse_value(&event).map_err(|e| e.to_string())?;
    let report =
        gantry_build_events::handler::finish(&deps.events, holder, &mut record, &parsed.detail)
            .await
            .map_err(|e| e.to_string())?;
    if report.posted.is_some() {
        tracing::info!(
            correlation_id = %record.correlation_id,
            build_id = id,
            outcome = "finished late",
            "reconcile"
        );
    }
    Ok(report.posted.is_some())
}
