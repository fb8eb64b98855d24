//! The events AWS CodeBuild sends to EventBridge (source `aws.codebuild`):
//! `CodeBuild Build State Change` and `CodeBuild Build Phase Change`, read
//! leniently.
//!
//! AWS documents these events loosely and the samples disagree with each
//! other: numbers come as integers or floats (`60` and `60.0`), contexts as
//! arrays or as strings that only look like JSON (`"[: ]"`), the final
//! `COMPLETED` phase has no status, an in-progress build has no phases and
//! its logs no group or stream. Only what Gantry needs is read; everything
//! else is skipped, anything AWS may omit or send as `null` has a default,
//! and only a missing `detail-type`, `detail`, `project-name` or `build-id`
//! (without which the event means nothing) fails, naming the JSON path.

use crate::ids::{BuildArn, BuildId};
use serde::{Deserialize, Deserializer, Serialize};

/// `source` of CodeBuild's events.
pub const SOURCE: &str = "aws.codebuild";
/// `detail-type` of a build's state change (IN_PROGRESS, SUCCEEDED, …).
pub const STATE_CHANGE: &str = "CodeBuild Build State Change";
/// `detail-type` of a build's phase change (one phase completed).
pub const PHASE_CHANGE: &str = "CodeBuild Build Phase Change";

/// The phase types of CodeBuild's own steps, around the buildspec's four
/// (`PhaseName::codebuild_name`), in the order a build goes through them.
pub mod phase_type {
    pub const SUBMITTED: &str = "SUBMITTED";
    pub const QUEUED: &str = "QUEUED";
    pub const PROVISIONING: &str = "PROVISIONING";
    pub const DOWNLOAD_SOURCE: &str = "DOWNLOAD_SOURCE";
    pub const UPLOAD_ARTIFACTS: &str = "UPLOAD_ARTIFACTS";
    pub const FINALIZING: &str = "FINALIZING";
    /// The last, with no status.
    pub const COMPLETED: &str = "COMPLETED";
}

/// The `type` of an environment variable of a build.
pub mod variable_type {
    pub const PLAINTEXT: &str = "PLAINTEXT";
    /// The value is an SSM parameter's name, resolved by CodeBuild.
    pub const PARAMETER_STORE: &str = "PARAMETER_STORE";
    /// The value is a Secrets Manager reference, resolved by CodeBuild.
    pub const SECRETS_MANAGER: &str = "SECRETS_MANAGER";
}

/// A build's status, as CodeBuild names it. Lenient: a status CodeBuild
/// adds one day reads as [`BuildStatus::Other`], never as an error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BuildStatus {
    InProgress,
    Succeeded,
    Failed,
    Fault,
    Stopped,
    TimedOut,
    Other(String),
}

impl BuildStatus {
    pub fn parse(text: &str) -> Self {
        match text {
            "IN_PROGRESS" => Self::InProgress,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "FAULT" => Self::Fault,
            "STOPPED" => Self::Stopped,
            "TIMED_OUT" => Self::TimedOut,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Fault => "FAULT",
            Self::Stopped => "STOPPED",
            Self::TimedOut => "TIMED_OUT",
            Self::Other(text) => text,
        }
    }

    /// Nothing more happens to a build after these (an unknown status is
    /// not taken for an end).
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::InProgress | Self::Other(_))
    }
}

impl Serialize for BuildStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BuildStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self::parse(&s))
    }
}
/// Phase statuses that mean the build went wrong in that phase.
pub const FAILED_PHASE_STATUSES: [&str; 4] = ["FAILED", "FAULT", "TIMED_OUT", "STOPPED"];

/// One EventBridge event from CodeBuild.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CodeBuildEvent {
    /// [`STATE_CHANGE`] or [`PHASE_CHANGE`].
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// EventBridge's event id: the same on every retry of one event.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    /// RFC 3339, e.g. `2017-09-01T16:14:28Z`.
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    pub detail: CodeBuildDetail,
}

impl CodeBuildEvent {
    pub fn is_state_change(&self) -> bool {
        self.detail_type == STATE_CHANGE
    }

    pub fn is_phase_change(&self) -> bool {
        self.detail_type == PHASE_CHANGE
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CodeBuildDetail {
    /// State changes only: IN_PROGRESS, SUCCEEDED, FAILED, FAULT, STOPPED,
    /// TIMED_OUT.
    #[serde(default)]
    pub build_status: Option<BuildStatus>,
    pub project_name: String,
    /// The build's ARN, which CodeBuild calls `build-id`.
    #[serde(rename = "build-id")]
    pub build_arn: BuildArn,
    /// State changes: the phase the build is in (COMPLETED once done).
    #[serde(default)]
    pub current_phase: Option<String>,
    /// Phase changes: the phase that just ended, and how.
    #[serde(default)]
    pub completed_phase: Option<String>,
    #[serde(default)]
    pub completed_phase_status: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub completed_phase_duration_seconds: Option<f64>,
    #[serde(default, deserialize_with = "or_default")]
    pub additional_information: AdditionalInformation,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct AdditionalInformation {
    #[serde(deserialize_with = "lenient_bool")]
    pub build_complete: bool,
    /// Who started the build: a user, a role session, `codepipeline/…`.
    pub initiator: Option<String>,
    /// The commit (or other source version) the build is building, when
    /// CodeBuild reports it.
    pub source_version: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub environment: Environment,
    /// Absent while the build is still in its first phase.
    #[serde(deserialize_with = "or_default")]
    pub phases: Vec<Phase>,
    pub logs: Option<Logs>,
    /// What the buildspec's `exported-variables` produced, once done.
    #[serde(deserialize_with = "or_default")]
    pub exported_environment_variables: Vec<EnvVar>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Environment {
    pub image: Option<String>,
    pub compute_type: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub environment_variables: Vec<EnvVar>,
}

/// One environment variable. For `PARAMETER_STORE` and `SECRETS_MANAGER`
/// the value is the parameter's name, not the secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct EnvVar {
    #[serde(deserialize_with = "or_default")]
    pub name: String,
    #[serde(deserialize_with = "or_default")]
    pub value: String,
    /// PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER; empty when AWS
    /// leaves it out (exported variables), which CodeBuild treats as
    /// PLAINTEXT.
    #[serde(rename = "type", deserialize_with = "or_default")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Phase {
    /// SUBMITTED, QUEUED, PROVISIONING, DOWNLOAD_SOURCE, INSTALL, PRE_BUILD,
    /// BUILD, POST_BUILD, UPLOAD_ARTIFACTS, FINALIZING, COMPLETED.
    #[serde(deserialize_with = "or_default")]
    pub phase_type: String,
    /// SUCCEEDED, FAILED, FAULT, TIMED_OUT, IN_PROGRESS, STOPPED; none on
    /// the final COMPLETED phase.
    pub phase_status: Option<String>,
    #[serde(deserialize_with = "lenient_f64")]
    pub duration_in_seconds: Option<f64>,
    /// CodeBuild's own format, e.g. `Sep 1, 2017 4:12:29 PM`, kept as text.
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Why a phase failed, e.g. `COMMAND_EXECUTION_ERROR: Error while
    /// executing command: make. Reason: exit status 2`; empty entries
    /// (`": "`) are dropped.
    #[serde(deserialize_with = "context_list")]
    pub phase_context: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Logs {
    /// The CloudWatch console link (present even before the log exists,
    /// then with `group=null;stream=null`).
    pub deep_link: Option<String>,
    pub group_name: Option<String>,
    pub stream_name: Option<String>,
}

impl Logs {
    /// The link to the build's log, unless it is the placeholder CodeBuild
    /// gives before the log exists (`group=null;stream=null`).
    pub fn link(&self) -> Option<&str> {
        self.deep_link
            .as_deref()
            .filter(|l| !l.is_empty() && !l.contains("group=null"))
    }
}

impl CodeBuildDetail {
    /// Where the build's log is, when the event names both its group and
    /// its stream.
    pub fn log_place(&self) -> Option<crate::page::log::LogPlace> {
        let logs = self.additional_information.logs.as_ref()?;
        Some(crate::page::log::LogPlace {
            group: logs.group_name.clone()?,
            stream: logs.stream_name.clone()?,
        })
    }

    /// The link to the build's log, when there is a real one.
    pub fn logs_link(&self) -> Option<&str> {
        self.additional_information
            .logs
            .as_ref()
            .and_then(Logs::link)
    }

    /// `project:uuid`, the part of the ARN after `build/`: what the console
    /// and the CLI call the build id. The whole id if it is not an ARN.
    pub fn build_id(&self) -> BuildId {
        self.build_arn.id()
    }

    /// The value of the PLAINTEXT environment variable `name` the build was
    /// started with (e.g. `GANTRY_COMMIT`). Variables of other types hold
    /// parameter names, not values, and are not returned.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.additional_information
            .environment
            .environment_variables
            .iter()
            .find(|v| v.name == name && (v.kind == variable_type::PLAINTEXT || v.kind.is_empty()))
            .map(|v| v.value.as_str())
    }

    /// The first phase that failed, faulted, timed out or was stopped.
    pub fn failed_phase(&self) -> Option<&str> {
        self.failed_phase_entry().map(|p| p.phase_type.as_str())
    }

    /// The whole entry of [`Self::failed_phase`], with its context.
    pub fn failed_phase_entry(&self) -> Option<&Phase> {
        self.additional_information.phases.iter().find(|p| {
            p.phase_type != phase_type::COMPLETED
                && p.phase_status
                    .as_deref()
                    .is_some_and(|s| FAILED_PHASE_STATUSES.contains(&s))
        })
    }

    /// The build's duration so far: the sum of its phases' durations,
    /// rounded to whole seconds. `None` when no phase has a duration yet.
    pub fn duration_seconds(&self) -> Option<u64> {
        let durations: Vec<f64> = self
            .additional_information
            .phases
            .iter()
            .filter_map(|p| p.duration_in_seconds)
            .filter(|d| d.is_finite() && *d >= 0.0)
            .collect();
        if durations.is_empty() {
            return None;
        }
        // Saturating: a float beyond u64 becomes u64::MAX.
        Some(durations.iter().sum::<f64>().round() as u64)
    }

    /// Whether the build has ended (see [`BuildStatus::is_final`]). Phase
    /// changes carry no build status and are never final.
    pub fn is_final(&self) -> bool {
        self.build_status
            .as_ref()
            .is_some_and(BuildStatus::is_final)
    }
}

/// A CodeBuild event that does not have the shape Gantry needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CodeBuild event: at {path}: {message}")]
pub struct ParseError {
    /// Where it went wrong, e.g. `detail.build-id` (`$` for the whole).
    pub path: String,
    pub message: String,
}

/// Reads one CodeBuild event from its JSON.
pub fn parse(json: &[u8]) -> Result<CodeBuildEvent, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let event: CodeBuildEvent =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ParseError {
            path: match e.path().to_string() {
                // `?`: serde could not tell where (truncated input).
                p if p.is_empty() || p == "." || p == "?" => "$".into(),
                p => p,
            },
            message: short(e.inner()),
        })?;
    de.end().map_err(|e| ParseError {
        path: "$".into(),
        message: short(&e),
    })?;
    Ok(event)
}

/// The same, from a JSON value already parsed (what a Lambda receives):
/// no second round of serialising and parsing.
pub fn parse_value(json: &serde_json::Value) -> Result<CodeBuildEvent, ParseError> {
    serde_path_to_error::deserialize(json).map_err(|e| ParseError {
        path: match e.path().to_string() {
            p if p.is_empty() || p == "." || p == "?" => "$".into(),
            p => p,
        },
        message: short(e.inner()),
    })
}

/// serde_json's message, cut short: a mismatch echoes the value.
fn short(e: &serde_json::Error) -> String {
    const MAX: usize = 160;
    let text = e.to_string();
    if text.len() > MAX {
        format!("{}…", crate::events::cap(&text, MAX))
    } else {
        text
    }
}

/// `null` as the default.
fn or_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// A number, integer or float, or a string holding one; anything else is
/// no number.
fn lenient_f64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// `true`, or the string `"true"`; anything else is false.
fn lenient_bool<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// A phase context: an array of strings (or of anything), or one string,
/// which may itself be a JSON array. Entries that say nothing (`""`,
/// `": "`) are dropped.
fn context_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    use serde_json::Value;
    fn text(v: Value) -> String {
        match v {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }
    let items = match Value::deserialize(de)? {
        Value::Null => Vec::new(),
        Value::Array(items) => items.into_iter().map(text).collect(),
        Value::String(s) => match serde_json::from_str::<Vec<Value>>(&s) {
            Ok(items) => items.into_iter().map(text).collect(),
            // `[: ]`: CodeBuild's own rendering of a list, not JSON.
            Err(_) => s
                .trim()
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .map_or_else(|| vec![s.clone()], |inner| vec![inner.to_owned()]),
        },
        other => vec![other.to_string()],
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s != ":")
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail: serde_json::Value) -> Result<CodeBuildEvent, ParseError> {
        let json = serde_json::json!({
            "detail-type": STATE_CHANGE,
            "source": "aws.codebuild",
            "detail": detail,
        });
        parse(json.to_string().as_bytes())
    }

    const ARN: &str = "arn:aws:codebuild:eu-west-1:123456789012:build/widgets:0b5e1c1e-9d2a-4c4f-8a0e-3f1d2c3b4a59";

    #[test]
    fn the_least_an_event_can_be() {
        let e =
            event(serde_json::json!({"project-name": "widgets", "build-id": ARN})).expect("parses");
        assert!(e.is_state_change());
        assert_eq!(
            e.detail.build_id(),
            "widgets:0b5e1c1e-9d2a-4c4f-8a0e-3f1d2c3b4a59"
        );
        assert!(!e.detail.is_final());
        assert_eq!(e.detail.failed_phase(), None);
        assert_eq!(e.detail.duration_seconds(), None);
        assert_eq!(e.detail.variable("GANTRY_COMMIT"), None);
    }

    #[test]
    fn nulls_strings_and_floats_are_tolerated() {
        let e = event(serde_json::json!({
            "project-name": "widgets",
            "build-id": ARN,
            "build-status": "FAILED",
            "additional-information": {
                "build-complete": "true",
                "environment": {"environment-variables": [
                    {"name": "GANTRY_COMMIT", "value": "abc", "type": "PLAINTEXT"},
                    {"name": "TOKEN", "value": "/gantry/token", "type": "PARAMETER_STORE"},
                    {"name": "NULLED", "value": null, "type": "PLAINTEXT"},
                ]},
                "phases": [
                    {"phase-type": "SUBMITTED", "phase-status": "SUCCEEDED", "duration-in-seconds": 0},
                    {"phase-type": "BUILD", "phase-status": "FAILED", "duration-in-seconds": 12.6,
                     "phase-context": ["COMMAND_EXECUTION_ERROR: Error while executing command: make. Reason: exit status 2"]},
                    {"phase-type": "POST_BUILD", "phase-status": "FAILED", "duration-in-seconds": "1"},
                    {"phase-type": "COMPLETED", "phase-context": "[: ]"},
                ],
                "exported-environment-variables": null,
                "logs": null,
            },
        }))
        .expect("parses");
        let d = &e.detail;
        assert!(d.is_final());
        assert!(d.additional_information.build_complete);
        assert_eq!(d.variable("GANTRY_COMMIT"), Some("abc"));
        assert_eq!(d.variable("TOKEN"), None);
        assert_eq!(d.variable("NULLED"), Some(""));
        assert_eq!(d.failed_phase(), Some("BUILD"));
        assert_eq!(
            d.failed_phase_entry().map(|p| p.phase_context.len()),
            Some(1)
        );
        assert_eq!(d.duration_seconds(), Some(14));
        assert!(d.additional_information.phases[3].phase_context.is_empty());
    }

    #[test]
    fn a_missing_build_id_names_its_path() {
        let err = event(serde_json::json!({"project-name": "widgets"})).expect_err("no id");
        assert_eq!(err.path, "detail");
        assert!(err.message.contains("build-id"), "{err}");
        let err =
            event(serde_json::json!({"project-name": 7, "build-id": ARN})).expect_err("bad name");
        assert_eq!(err.path, "detail.project-name");
        let err = parse(b"{\"detail-type\": \"x\"").expect_err("truncated");
        assert_eq!(err.path, "$");
        assert!(parse(b"[]").is_err());
        let ok = serde_json::json!({"detail-type": "x", "detail": {"project-name": "p", "build-id": "p:1"}});
        assert!(parse(format!("{ok} trailing").as_bytes()).is_err());
    }

    #[test]
    fn contexts_come_in_every_shape() {
        let phase = |ctx: serde_json::Value| -> Vec<String> {
            serde_json::from_value::<Phase>(serde_json::json!({"phase-context": ctx}))
                .expect("phase")
                .phase_context
        };
        assert!(phase(serde_json::json!([])).is_empty());
        assert!(phase(serde_json::json!([": "])).is_empty());
        assert!(phase(serde_json::json!("[]")).is_empty());
        assert!(phase(serde_json::json!("[: ]")).is_empty());
        assert!(phase(serde_json::Value::Null).is_empty());
        assert_eq!(phase(serde_json::json!("[\"a\", 1]")), ["a", "1"]);
        assert_eq!(
            phase(serde_json::json!("[CLIENT_ERROR: no such file]")),
            ["CLIENT_ERROR: no such file"]
        );
        assert_eq!(phase(serde_json::json!({"k": 1})), [r#"{"k":1}"#]);
    }
}
