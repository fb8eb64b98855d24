//! What a build's log tells a person before it ends, and where to look
//! once it failed: the phases CodeBuild's `[Container]` markers name, and
//! the failed phase's first error line.

use crate::github::checks::strip_ansi;

/// Where a build's log is kept in CloudWatch Logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogPlace {
    pub group: String,
    pub stream: String,
}

/// The stream prefix of fork builds' logs: start-build names it in
/// `logsConfigOverride`, the untrusted role may write only under it, and
/// CodeBuild names the stream `<prefix>/<build uuid>`.
pub const UNTRUSTED_LOG_STREAM_PREFIX: &str = "untrusted";

impl LogPlace {
    /// Where CodeBuild writes `project`'s build `uuid`: the project's group
    /// (`/aws/codebuild/<project>`, as the template makes it), the uuid's
    /// stream, under `untrusted/` for a fork's build.
    pub fn conventional(project: &str, uuid: &str, trusted: bool) -> LogPlace {
        LogPlace {
            group: format!("/aws/codebuild/{project}"),
            stream: if trusted {
                uuid.to_owned()
            } else {
                format!("{UNTRUSTED_LOG_STREAM_PREFIX}/{uuid}")
            },
        }
    }
}

/// A phase as the log shows it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenPhase {
    pub phase: String,
    /// `SUCCEEDED`, `FAILED`, …; `None` while it runs.
    pub status: Option<String>,
}

/// `[Container] <date> <time> <text>` → the text.
fn marker(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("[Container] ")?;
    // Two fields of date and time, then the text; a marker without them
    // (a local build's) is the text itself.
    let mut parts = rest.splitn(3, ' ');
    let (a, b, text) = (parts.next()?, parts.next(), parts.next());
    match (b, text) {
        (Some(_), Some(text)) if a.contains('/') => Some(text.trim_end()),
        _ => Some(rest.trim_end()),
    }
}

/// The phases the markers of `lines` name, in order.
pub fn phases_seen<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<SeenPhase> {
    let mut out: Vec<SeenPhase> = Vec::new();
    for line in lines {
        let Some(text) = marker(line) else { continue };
        if let Some(phase) = text.strip_prefix("Entering phase ") {
            out.push(SeenPhase {
                phase: phase.trim().to_owned(),
                status: None,
            });
        } else if let Some(rest) = text.strip_prefix("Phase complete: ")
            && let Some((phase, state)) = rest.split_once(" State: ")
        {
            let phase = phase.trim();
            match out.iter_mut().rev().find(|p| p.phase == phase) {
                Some(p) => p.status = Some(state.trim().to_owned()),
                None => out.push(SeenPhase {
                    phase: phase.to_owned(),
                    status: Some(state.trim().to_owned()),
                }),
            }
        }
    }
    out
}

/// Words that start an error line in most tools' output.
fn looks_like_error(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let lower = lower.trim_start();
    lower.starts_with("error")
        || lower.starts_with("fatal")
        || lower.starts_with("failed")
        || lower.starts_with("fail:")
        || lower.starts_with("--- fail")
        || lower.starts_with("panic")
        || lower.starts_with("traceback")
        || lower.starts_with("exception")
        || lower.starts_with("npm err!")
        || lower.starts_with("::error")
        || lower.contains("error:")
        || lower.contains("error[")
        || lower.contains("panicked at")
        || lower.contains(" failed")
}

/// The index in `lines` of the first line worth reading in the failed
/// `phase`: its first error-looking line, else CodeBuild's line saying
/// which command failed, else the phase's last line. `None` when the log
/// holds nothing of that phase.
pub fn first_error(lines: &[String], phase: &str) -> Option<usize> {
    let entering = format!("Entering phase {phase}");
    let completed = format!("Phase complete: {phase} ");
    // The phase's start, or (the latest part of a long log) the part's
    // first line when only the phase's end is in it.
    let (start, body_start) = match lines
        .iter()
        .rposition(|l| marker(l).is_some_and(|t| t == entering))
    {
        Some(i) => (i, i + 1),
        None if lines
            .iter()
            .any(|l| marker(l).is_some_and(|t| t.starts_with(&completed))) =>
        {
            (0, 0)
        }
        None => return None,
    };
    let end = lines[body_start..]
        .iter()
        .position(|l| marker(l).is_some_and(|t| t.starts_with("Phase complete: ")))
        .map_or(lines.len(), |i| body_start + i);
    let body = &lines[body_start..end];
    if let Some(i) = body
        .iter()
        .position(|l| marker(l).is_none() && looks_like_error(&strip_ansi(l)))
    {
        return Some(body_start + i);
    }
    if let Some(i) = body
        .iter()
        .position(|l| marker(l).is_some_and(|t| t.starts_with("Command did not exit successfully")))
    {
        return Some(body_start + i);
    }
    if end > body_start {
        Some(end - 1)
    } else {
        Some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    const FAILED: &[&str] = &[
        "[Container] 2026/12/01 10:00:00.000001 Running on CodeBuild On-demand",
        "[Container] 2026/12/01 10:00:00.000002 Entering phase INSTALL",
        "installing; no error here",
        "[Container] 2026/12/01 10:00:01.000000 Phase complete: INSTALL State: SUCCEEDED",
        "[Container] 2026/12/01 10:00:01.000001 Entering phase BUILD",
        "[Container] 2026/12/01 10:00:01.000002 Running command cargo test",
        "   Compiling widgets v0.1.0",
        "\u{1b}[31merror[E0308]\u{1b}[0m: mismatched types",
        " --> src/lib.rs:3:5",
        "error: could not compile `widgets`",
        "[Container] 2026/12/01 10:00:09.000000 Command did not exit successfully cargo test exit status 101",
        "[Container] 2026/12/01 10:00:09.000001 Phase complete: BUILD State: FAILED",
        "[Container] 2026/12/01 10:00:09.000002 Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: cargo test. Reason: exit status 101",
        "[Container] 2026/12/01 10:00:09.000003 Entering phase POST_BUILD",
        "error: post build said error",
    ];

    #[test]
    fn the_failed_phase_s_first_error_line_is_found() {
        let lines = log(FAILED);
        assert_eq!(first_error(&lines, "BUILD"), Some(7));
        // Without error words: the command CodeBuild says failed.
        let quiet: Vec<String> = lines
            .iter()
            .filter(|l| !l.contains("rror") || l.starts_with("[Container]"))
            .cloned()
            .collect();
        let i = first_error(&quiet, "BUILD").expect("a line");
        assert!(
            quiet[i].contains("Command did not exit successfully"),
            "{}",
            quiet[i]
        );
        assert_eq!(first_error(&lines, "DOWNLOAD_SOURCE"), None);
        // The latest part of a long log holds the phase's end only.
        assert_eq!(first_error(&lines[6..], "BUILD"), Some(1));
    }

    #[test]
    fn a_running_build_s_phases_come_from_its_markers() {
        let lines = log(&FAILED[..8]);
        assert_eq!(
            phases_seen(lines.iter().map(String::as_str)),
            vec![
                SeenPhase {
                    phase: "INSTALL".into(),
                    status: Some("SUCCEEDED".into())
                },
                SeenPhase {
                    phase: "BUILD".into(),
                    status: None
                },
            ]
        );
        let done = phases_seen(FAILED.iter().copied());
        assert_eq!(done[1].status.as_deref(), Some("FAILED"));
        assert_eq!(done[2].phase, "POST_BUILD");
    }

    #[test]
    fn a_fork_s_log_is_under_its_own_prefix() {
        assert_eq!(
            LogPlace::conventional("gantry-trusted", "0f1e", true),
            LogPlace {
                group: "/aws/codebuild/gantry-trusted".into(),
                stream: "0f1e".into()
            }
        );
        assert_eq!(
            LogPlace::conventional("gantry-trusted", "0f1e", false).stream,
            "untrusted/0f1e"
        );
    }
}
