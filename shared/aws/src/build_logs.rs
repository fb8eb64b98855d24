//! A build's log in CloudWatch Logs, where CodeBuild writes it (the final
//! state event names the group and stream): its end, which a failed
//! build's check run shows and annotates, and its parts, which the build
//! page reads.

use crate::describe_sdk_error;
use crate::on_first_use::OnFirstUse;

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
    client: OnFirstUse<aws_sdk_cloudwatchlogs::Client>,
}

impl BuildLogs {
    /// With a client made now, or made on the first read
    /// ([`OnFirstUse::new`]) where reading a log is a rare path.
    pub fn new(client: impl Into<OnFirstUse<aws_sdk_cloudwatchlogs::Client>>) -> BuildLogs {
        BuildLogs {
            client: client.into(),
        }
    }

    /// The last [`TAIL_EVENTS`] lines of the log at `place`, oldest first
    /// (none when the stream does not exist).
    pub async fn tail(
        &self,
        place: &gantry_core::page::log::LogPlace,
    ) -> Result<Vec<String>, LogsError> {
        let mut lines = Vec::new();
        if let Some(out) = self.events(place, None, false, TAIL_EVENTS).await? {
            for event in out.events() {
                push_lines(&mut lines, event.message().unwrap_or_default());
            }
        }
        Ok(lines)
    }
}

/// An event's message as lines: CodeBuild puts one line in each, with its
/// newline; an empty message is an empty line.
fn push_lines(lines: &mut Vec<String>, message: &str) {
    lines.extend(message.lines().map(str::to_owned));
    if message.is_empty() {
        lines.push(String::new());
    }
}

/// A part of a log, and the tokens to the parts around it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPart {
    /// Oldest first, one entry per line.
    pub lines: Vec<String>,
    /// Asks for the lines before these.
    pub backward: Option<String>,
    /// Asks for the lines after these (also once more are written).
    pub forward: Option<String>,
    /// The first line is the log's first.
    pub at_start: bool,
    /// Nothing follows these lines (yet).
    pub at_end: bool,
    /// The bytes CloudWatch Logs sent.
    pub bytes: usize,
}

/// Which part of a log to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading<'a> {
    /// Its end: what a person looks at first.
    Latest,
    /// The lines before a part (its `backward` token).
    Before(&'a str),
    /// The lines after a part (its `forward` token): a running log's new
    /// lines.
    After(&'a str),
    /// From its start (or from a part's `forward` token), as text.
    FromStart(Option<&'a str>),
}

/// Below this, a part that came back shorter than asked is the whole
/// rest of the log (CloudWatch Logs stops a response at 1 MB).
const SHORT_RESPONSE_BYTES: usize = 768 * 1024;

impl BuildLogs {
    /// One part of the log at `place`, at most `limit` events (and at most
    /// the 1 MB CloudWatch Logs sends at once). `None` when the stream does
    /// not exist (yet).
    pub async fn part(
        &self,
        place: &gantry_core::page::log::LogPlace,
        reading: Reading<'_>,
        limit: i32,
    ) -> Result<Option<LogPart>, LogsError> {
        let (token, from_head) = match reading {
            Reading::Latest => (None, false),
            Reading::Before(t) => (Some(t), false),
            Reading::After(t) => (Some(t), true),
            Reading::FromStart(t) => (t, true),
        };
        let Some(out) = self.events(place, token, from_head, limit).await? else {
            return Ok(None);
        };
        let mut part = LogPart {
            backward: out.next_backward_token().map(str::to_owned),
            forward: out.next_forward_token().map(str::to_owned),
            ..LogPart::default()
        };
        for event in out.events() {
            let message = event.message().unwrap_or_default();
            part.bytes += message.len() + 26;
            push_lines(&mut part.lines, message);
        }
        let count = out.events().len();
        let short = count < usize::try_from(limit).unwrap_or(usize::MAX)
            && part.bytes < SHORT_RESPONSE_BYTES;
        match reading {
            Reading::Latest | Reading::Before(_) => {
                part.at_end = matches!(reading, Reading::Latest);
                // The end reached returns the token it was given.
                part.at_start =
                    short || token.is_some() && part.backward.as_deref() == token || count == 0;
                if !part.at_start
                    && let Some(back) = part.backward.clone()
                {
                    // One event's look further back settles it.
                    let probe = self.events(place, Some(&back), false, 1).await?;
                    part.at_start = probe.is_none_or(|p| p.events().is_empty());
                }
            }
            Reading::After(_) | Reading::FromStart(_) => {
                part.at_start = matches!(reading, Reading::FromStart(None));
                part.at_end = short || count == 0 || part.forward.as_deref() == token;
            }
        }
        Ok(Some(part))
    }

    async fn events(
        &self,
        place: &gantry_core::page::log::LogPlace,
        token: Option<&str>,
        from_head: bool,
        limit: i32,
    ) -> Result<
        Option<aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput>,
        LogsError,
    > {
        let result = self
            .client
            .get_log_events()
            .log_group_name(&place.group)
            .log_stream_name(&place.stream)
            .set_next_token(token.map(str::to_owned))
            .start_from_head(from_head)
            .limit(limit)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(LogsError {
                group: place.group.clone(),
                stream: place.stream.clone(),
                reason: describe_sdk_error(&e),
            }),
        }
    }
}
