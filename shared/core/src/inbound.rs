//! The events each consumer reads, as one enum per consumer, read once from
//! EventBridge's envelope by `source` and `detail-type`: no handler matches
//! detail types as strings, and each name is spelled once, where its type
//! is (`events::Detail::DETAIL_TYPE`, `codebuild_events::STATE_CHANGE`, …).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::codebuild_events::{self, CodeBuildEvent};
use crate::events::{
    BuildHeld, BuildRejected, BuildRequested, BuildSkipped, BuildStarted, BuildSuperseded,
    BuildspecValidated, CheckRunRequested, Detail, SOURCE, SecretsResolved,
};
use crate::pipeline_events::ExecutionEvent;

/// `source` of CodePipeline's events.
pub const CODEPIPELINE_SOURCE: &str = "aws.codepipeline";
/// `detail-type` of a pipeline execution's state change.
pub const EXECUTION_STATE_CHANGE: &str = "CodePipeline Pipeline Execution State Change";

/// An event that claims to be one a consumer reads, and is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable {detail_type} event: {reason}")]
pub struct InboundError {
    pub detail_type: String,
    pub reason: String,
}

impl From<crate::pipeline_events::ExecutionEventError> for InboundError {
    fn from(e: crate::pipeline_events::ExecutionEventError) -> InboundError {
        InboundError {
            detail_type: EXECUTION_STATE_CHANGE.to_owned(),
            reason: e.0,
        }
    }
}

fn envelope(event: &Value) -> (&str, &str) {
    (
        event["source"].as_str().unwrap_or_default(),
        event["detail-type"].as_str().unwrap_or_default(),
    )
}

fn detail<T: DeserializeOwned>(event: &Value, detail_type: &str) -> Result<T, InboundError> {
    serde_json::from_value(event["detail"].clone()).map_err(|e| InboundError {
        detail_type: detail_type.to_owned(),
        reason: e.to_string(),
    })
}

/// One of Gantry's own events, if `event` is `T`'s.
fn gantry<T: Detail + DeserializeOwned>(event: &Value) -> Result<Option<T>, InboundError> {
    match envelope(event) {
        (SOURCE, t) if t == T::DETAIL_TYPE => detail(event, t).map(Some),
        _ => Ok(None),
    }
}

/// What build-events reports: Gantry's moments of a build, CodeBuild's
/// state and phase changes, CodePipeline's execution state changes.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEventsInput {
    /// A delivery accepted: in App mode, its check run, queued.
    Requested(BuildRequested),
    /// A Re-run or a button of a Gantry check run (App mode).
    CheckRun(CheckRunRequested),
    Skipped(BuildSkipped),
    Rejected(BuildRejected),
    Held(BuildHeld),
    Started(BuildStarted),
    Superseded(BuildSuperseded),
    CodeBuild(Box<CodeBuildEvent>),
    PipelineExecution(ExecutionEvent),
}

impl BuildEventsInput {
    /// `None` for an event build-events does not read.
    pub fn read(event: &Value) -> Result<Option<Self>, InboundError> {
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Skipped(e)));
        }
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Rejected(e)));
        }
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Held(e)));
        }
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Started(e)));
        }
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Superseded(e)));
        }
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Requested(e)));
        }
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::CheckRun(e)));
        }
        Ok(match envelope(event) {
            (codebuild_events::SOURCE, t)
                if t == codebuild_events::STATE_CHANGE || t == codebuild_events::PHASE_CHANGE =>
            {
                let e = codebuild_events::parse_value(event).map_err(|e| InboundError {
                    detail_type: t.to_owned(),
                    reason: e.to_string(),
                })?;
                Some(Self::CodeBuild(Box::new(e)))
            }
            (CODEPIPELINE_SOURCE, EXECUTION_STATE_CHANGE) => Some(Self::PipelineExecution(
                crate::pipeline_events::parse_event(event)?,
            )),
            _ => None,
        })
    }
}

/// What a dead-letter queue holds for build-events to finish: an upstream
/// step's event (its commit gets an `error` status), or one of its own.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadLetterInput {
    /// validate-buildspec's.
    Requested(BuildRequested),
    /// inject-secrets'.
    Validated(Box<BuildspecValidated>),
    /// start-build's.
    Resolved(Box<SecretsResolved>),
    /// build-events' own, reported again.
    Own(BuildEventsInput),
}

impl DeadLetterInput {
    pub fn read(event: &Value) -> Result<Option<Self>, InboundError> {
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Requested(e)));
        }
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Validated(Box::new(e))));
        }
        if let Some(e) = gantry(event)? {
            return Ok(Some(Self::Resolved(Box::new(e))));
        }
        Ok(BuildEventsInput::read(event)?.map(Self::Own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_read_by_its_source_and_detail_type() {
        let started = serde_json::json!({
            "source": "gantry",
            "detail-type": BuildStarted::DETAIL_TYPE,
            "detail": {"v": 1, "correlation_id": "c"},
        });
        // Named as a Build Started, but not one: an error, not a skip.
        assert!(BuildEventsInput::read(&started).is_err());
        let foreign = serde_json::json!({
            "source": "someone.else",
            "detail-type": BuildStarted::DETAIL_TYPE,
            "detail": {},
        });
        assert_eq!(BuildEventsInput::read(&foreign), Ok(None));
        let mut pipeline = serde_json::json!({
            "source": CODEPIPELINE_SOURCE,
            "detail-type": EXECUTION_STATE_CHANGE,
            "region": "eu-west-1",
            "detail": {"pipeline": "web", "execution-id": "3f1c-22", "state": "SUCCEEDED"},
        });
        assert!(matches!(
            BuildEventsInput::read(&pipeline),
            Ok(Some(BuildEventsInput::PipelineExecution(e))) if e.pipeline == "web"
        ));
        // Named as an execution state change, but without its execution:
        // an error, not a skip.
        pipeline["detail"] = serde_json::json!({"pipeline": "web", "state": "SUCCEEDED"});
        let err = BuildEventsInput::read(&pipeline).expect_err("no execution id");
        assert!(err.reason.contains("execution-id"), "{err}");
    }
}
