//! CodePipeline's execution state change, as far as Gantry reads it: the
//! pipeline, the execution, its state and the region, each checked before
//! it goes into a URL path or a claim key.

use serde_json::Value;

use crate::github::statuses::StatusState;

/// An execution state change without what Gantry needs of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExecutionEventError(pub String);

/// One `CodePipeline Pipeline Execution State Change`, as far as it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionEvent {
    pub pipeline: String,
    pub execution_id: String,
    pub state: ExecutionState,
    /// The event's region: where the console link points.
    pub region: String,
}

/// The states CodePipeline reports for an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionState {
    Started,
    Resumed,
    Succeeded,
    Failed,
    Stopping,
    Stopped,
    Superseded,
    Canceled,
}

impl ExecutionState {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "STARTED" => Self::Started,
            "RESUMED" => Self::Resumed,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "STOPPING" => Self::Stopping,
            "STOPPED" => Self::Stopped,
            "SUPERSEDED" => Self::Superseded,
            "CANCELED" => Self::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "STARTED",
            Self::Resumed => "RESUMED",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Superseded => "SUPERSEDED",
            Self::Canceled => "CANCELED",
        }
    }

    /// The status this state posts and its description; `None` for
    /// STOPPING, which is followed by STOPPED (or by the end it was
    /// waiting for).
    pub fn status(self) -> Option<(StatusState, &'static str)> {
        Some(match self {
            Self::Started | Self::Resumed => (StatusState::Pending, "pipeline running"),
            Self::Succeeded => (StatusState::Success, "pipeline succeeded"),
            Self::Failed => (StatusState::Failure, "pipeline failed"),
            Self::Stopped | Self::Canceled => (StatusState::Error, "pipeline stopped"),
            Self::Superseded => (StatusState::Error, "superseded by a newer execution"),
            Self::Stopping => return None,
        })
    }

    pub fn is_final(self) -> bool {
        !matches!(self, Self::Started | Self::Resumed | Self::Stopping)
    }
}

/// Reads the event's `region` and `detail.pipeline`, `detail.execution-id`,
/// `detail.state`.
pub fn parse_event(event: &Value) -> Result<ExecutionEvent, ExecutionEventError> {
    let field = |value: &Value, name: &str| -> Result<String, ExecutionEventError> {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                ExecutionEventError(format!(
                    "CodePipeline execution state change without {name}"
                ))
            })
    };
    let detail = &event["detail"];
    let pipeline = field(detail, "pipeline")?;
    let execution_id = field(detail, "execution-id")?;
    let state = field(detail, "state")?;
    let region = field(event, "region")?;
    // They go into a URL path and an S3 claim: only what AWS allows.
    if !(pipeline.len() <= 100
        && pipeline
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_')))
    {
        return Err(ExecutionEventError(format!(
            "pipeline name {pipeline:?} is not a CodePipeline name"
        )));
    }
    if !(execution_id.len() <= 100
        && execution_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(ExecutionEventError(format!(
            "execution id {execution_id:?} is not a CodePipeline execution id"
        )));
    }
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ExecutionEventError(format!(
            "region {region:?} is not an AWS region"
        )));
    }
    let state = ExecutionState::parse(&state).ok_or_else(|| {
        ExecutionEventError(format!(
            "unknown CodePipeline execution state {state:?} (expected STARTED, RESUMED, \
             SUCCEEDED, FAILED, STOPPING, STOPPED, SUPERSEDED or CANCELED)"
        ))
    })?;
    Ok(ExecutionEvent {
        pipeline,
        execution_id,
        state,
        region,
    })
}
