//! A CodeBuild build, as the SDK reads it (`BatchGetBuilds`), seen the way
//! CodeBuild's `Build State Change` event shows it: so that a build whose
//! final event never came (reconcile) and the local stack's builds
//! (`gantry dev`) are reported by the one code path that reports events.

use aws_sdk_codebuild::types::{Build, EnvironmentVariable};
use gantry_core::codebuild_events::{
    self, AdditionalInformation, BuildStatus, CodeBuildDetail, EnvVar, Environment, Logs, Phase,
};

fn variables(vars: &[EnvironmentVariable]) -> Vec<EnvVar> {
    vars.iter()
        .map(|v| EnvVar {
            name: v.name().to_owned(),
            value: v.value().to_owned(),
            kind: v
                .r#type()
                .map_or(codebuild_events::variable_type::PLAINTEXT, |t| t.as_str())
                .to_owned(),
        })
        .collect()
}

/// The event's detail for `build`.
pub fn state_change_detail(build: &Build) -> CodeBuildDetail {
    CodeBuildDetail {
        build_status: build.build_status().map(|s| BuildStatus::parse(s.as_str())),
        project_name: build.project_name().unwrap_or_default().to_owned(),
        build_arn: build.arn().or(build.id()).unwrap_or_default().into(),
        current_phase: build.current_phase().map(str::to_owned),
        completed_phase: None,
        completed_phase_status: None,
        completed_phase_duration_seconds: None,
        additional_information: AdditionalInformation {
            build_complete: build.build_complete(),
            initiator: build.initiator().map(str::to_owned),
            source_version: build.resolved_source_version().map(str::to_owned),
            environment: Environment {
                image: build.environment().map(|e| e.image().to_owned()),
                compute_type: build
                    .environment()
                    .map(|e| e.compute_type().as_str().to_owned()),
                environment_variables: build
                    .environment()
                    .map(|e| variables(e.environment_variables()))
                    .unwrap_or_default(),
            },
            phases: build
                .phases()
                .iter()
                .map(|p| Phase {
                    phase_type: p
                        .phase_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    phase_status: p.phase_status().map(|s| s.as_str().to_owned()),
                    #[allow(clippy::cast_precision_loss)]
                    duration_in_seconds: p.duration_in_seconds().map(|d| d as f64),
                    start_time: None,
                    end_time: None,
                    phase_context: p
                        .contexts()
                        .iter()
                        .filter_map(|c| {
                            let text = format!(
                                "{}: {}",
                                c.status_code().unwrap_or_default(),
                                c.message().unwrap_or_default()
                            );
                            (text != ": ").then_some(text)
                        })
                        .collect(),
                })
                .collect(),
            logs: build.logs().map(|l| Logs {
                deep_link: l.deep_link().map(str::to_owned),
                group_name: l.group_name().map(str::to_owned),
                stream_name: l.stream_name().map(str::to_owned),
            }),
            exported_environment_variables: build
                .exported_environment_variables()
                .iter()
                .map(|v| EnvVar {
                    name: v.name().unwrap_or_default().to_owned(),
                    value: v.value().unwrap_or_default().to_owned(),
                    kind: String::new(),
                })
                .collect(),
        },
    }
}

/// The whole `Build State Change` event for `build`, as EventBridge would
/// deliver it (what `gantry dev` hands build-events for a build it ran).
pub fn state_change_event(build: &Build) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "detail-type": codebuild_events::STATE_CHANGE,
        "source": codebuild_events::SOURCE,
        "resources": [build.arn()],
        "detail": state_change_detail(build),
    })
}
