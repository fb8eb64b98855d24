//! The end of a build's log in CloudWatch Logs, where CodeBuild writes it
//! (the final state event names the group and stream): what a failed
//! build's check run shows and annotates.

use crate::describe_sdk_error;

/// How many of the log's last events are read: GitHub shows at most
/// 65,535 characters, and the failed phase's last lines are what matter.
pub const TAIL_EVENTS: i32 = 1_000;

#[derive(Debug, thiserror::Error)]
#[error("CloudWatch Logs {group}/{stream}: {reason}")]
pub struct LogsError {
    pub group: String,
    pub stream: String,
    pub reason: String,
}

pub struct BuildLogs {
    client: aws_sdk_cloudwatchlogs::Client,
}

impl BuildLogs {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client) -> BuildLogs {
        BuildLogs { client }
    }

    /// The last [`TAIL_EVENTS`] lines of the stream, oldest first; each
    /// event's message split into lines (CodeBuild puts one line in each,
    /// with its newline).
    pub async fn tail(&self, group: &str, stream: &str) -> Result<Vec<String>, LogsError> {
        let out = self
            .client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(false)
            .limit(TAIL_EVENTS)
            .send()
            .await
            .map_err(|e| LogsError {
                group: group.to_owned(),
                stream: stream.to_owned(),
                reason: describe_sdk_error(&e),
            })?;
        Ok(out
            .events()
            .iter()
            .filter_map(|e| e.message())
            .flat_map(|m| m.lines())
            .map(str::to_owned)
            .collect())
    }
}
