//! GitHub check runs, decided before any I/O: the run's status and
//! conclusion at each moment of a build, its Markdown output (summary, the
//! failed phase's last log lines), annotations (from the buildspec's
//! diagnostics and from the lines of the build log in the two common
//! machine-readable forms), and the buttons it offers.
//!
//! GitHub's limits are kept here, once: `output.text` and `output.summary`
//! at most 65,535 characters, at most 50 annotations per request, an
//! action's label 20 characters, its description 40, its identifier 20.

use serde::{Deserialize, Serialize};

use crate::codebuild_events::BuildStatus;
use crate::diagnostic::{Diagnostic, Severity};
use crate::notify::BuildResult;
use crate::records::BuildRecord;

/// `output.summary` and `output.text` hold at most this many characters.
pub const MAX_OUTPUT_CHARS: usize = 65_535;
/// Annotations per create or update request.
pub const MAX_ANNOTATIONS_PER_REQUEST: usize = 50;
/// Annotations taken from one build's log: beyond this, the log itself
/// says the rest.
pub const MAX_LOG_ANNOTATIONS: usize = 50;
/// How many of the failed phase's last lines `output.text` shows (fewer
/// when they would not fit).
pub const LOG_EXCERPT_LINES: usize = 200;

/// Where a check run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Queued,
    InProgress,
    Completed,
}

/// How a completed check run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    Success,
    Failure,
    Neutral,
    Cancelled,
    Skipped,
    TimedOut,
    /// A fork's pull request waits for a maintainer: GitHub shows the
    /// run's `details_url` and its buttons.
    ActionRequired,
}

/// The status and, once completed, the conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    pub status: CheckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<Conclusion>,
}

impl CheckState {
    /// How far along a run is, for "never backwards": queued, then in
    /// progress, then completed. A hold for approval completes the run
    /// (`action_required`, so GitHub shows the button) but waits like a
    /// queued one: the approved build moves it on.
    pub fn rank(self) -> u8 {
        match (self.status, self.conclusion) {
            (CheckStatus::Queued, _)
            | (CheckStatus::Completed, Some(Conclusion::ActionRequired)) => 0,
            (CheckStatus::InProgress, _) => 1,
            (CheckStatus::Completed, _) => 2,
        }
    }

    /// May a run in this state be set to `next`? Only forwards, and a
    /// completed run's conclusion is never replaced; the same open state
    /// may be set again (a newer summary).
    pub fn may_become(self, next: CheckState) -> bool {
        match self.rank().cmp(&next.rank()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => self.rank() < 2,
        }
    }

    const fn open(status: CheckStatus) -> CheckState {
        CheckState {
            status,
            conclusion: None,
        }
    }

    const fn done(conclusion: Conclusion) -> CheckState {
        CheckState {
            status: CheckStatus::Completed,
            conclusion: Some(conclusion),
        }
    }
}

/// The check run's state for a verdict's result. `ended_as` is CodeBuild's
/// final status when the build ran (a timeout is `timed_out`, not a plain
/// failure); `awaiting_approval` marks the hold of a fork's pull request.
pub fn state(
    result: BuildResult,
    ended_as: Option<&BuildStatus>,
    awaiting_approval: bool,
) -> CheckState {
    match result {
        BuildResult::Queued if awaiting_approval => CheckState::done(Conclusion::ActionRequired),
        BuildResult::Queued => CheckState::open(CheckStatus::Queued),
        BuildResult::Started => CheckState::open(CheckStatus::InProgress),
        BuildResult::Succeeded | BuildResult::Fixed => CheckState::done(Conclusion::Success),
        BuildResult::Failed if ended_as == Some(&BuildStatus::TimedOut) => {
            CheckState::done(Conclusion::TimedOut)
        }
        BuildResult::Failed | BuildResult::Errored | BuildResult::Rejected => {
            CheckState::done(Conclusion::Failure)
        }
        BuildResult::Stopped | BuildResult::Superseded => CheckState::done(Conclusion::Cancelled),
        BuildResult::Skipped => CheckState::done(Conclusion::Skipped),
    }
}

/// How serious an annotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationLevel {
    Notice,
    Warning,
    Failure,
}

/// A note on a line of a file of the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    /// Relative to the repository's root.
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    /// Columns only on a one-line annotation (GitHub refuses them else).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
    pub annotation_level: AnnotationLevel,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl Annotation {
    fn at(
        path: &str,
        line: u32,
        col: Option<u32>,
        level: AnnotationLevel,
        message: &str,
        title: Option<String>,
    ) -> Annotation {
        let line = line.max(1);
        Annotation {
            path: path.to_owned(),
            start_line: line,
            end_line: line,
            start_column: col.filter(|c| *c > 0),
            end_column: col.filter(|c| *c > 0),
            annotation_level: level,
            message: cap_chars(message, 64 * 1024),
            title,
        }
    }
}

/// Every diagnostic of the buildspec at `path`: errors as failures,
/// warnings as warnings, at their line and column.
pub fn diagnostic_annotations(path: &str, diagnostics: &[Diagnostic]) -> Vec<Annotation> {
    diagnostics
        .iter()
        .map(|d| {
            let level = match d.severity {
                Severity::Error => AnnotationLevel::Failure,
                Severity::Warning => AnnotationLevel::Warning,
            };
            let title = (!d.path.is_empty()).then(|| d.path.clone());
            Annotation::at(path, d.line, Some(d.col), level, &d.message, title)
        })
        .collect()
}

/// Annotations from a build's log: lines GitHub Actions' workflow commands
/// print (`::error file=src/a.rs,line=3,col=5::message`, and `::warning`,
/// `::notice`) and lines compilers and linters print (`src/a.c:3:5: error:
/// message`, `src/a.c:3: warning: message`). Paths under `src_dir` (the
/// build's `CODEBUILD_SRC_DIR`) are made relative to it; other absolute
/// paths, and paths that climb out with `..`, name no file of the commit
/// and are dropped. At most [`MAX_LOG_ANNOTATIONS`], in log order.
pub fn log_annotations<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    src_dir: Option<&str>,
) -> Vec<Annotation> {
    let mut out = Vec::new();
    for raw in lines {
        if out.len() == MAX_LOG_ANNOTATIONS {
            break;
        }
        let line = strip_ansi(raw);
        let line = line.trim();
        let found = workflow_command(line).or_else(|| compiler_line(line));
        if let Some((path, row, col, level, message, title)) = found
            && let Some(path) = relative(&path, src_dir)
        {
            out.push(Annotation::at(&path, row, col, level, &message, title));
        }
    }
    out
}

type Found = (
    String,
    u32,
    Option<u32>,
    AnnotationLevel,
    String,
    Option<String>,
);

/// `::error file=…,line=…,col=…,title=…::message` (GitHub's escapes undone).
fn workflow_command(line: &str) -> Option<Found> {
    let rest = line.strip_prefix("::")?;
    let (command, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let level = match command {
        "error" => AnnotationLevel::Failure,
        "warning" => AnnotationLevel::Warning,
        "notice" => AnnotationLevel::Notice,
        _ => return None,
    };
    let (properties, message) = rest.split_once("::")?;
    let (mut file, mut row, mut col, mut title) = (None, None, None, None);
    for property in properties.split(',') {
        let (key, value) = property.split_once('=')?;
        let value = unescape_property(value);
        match key.trim() {
            "file" => file = Some(value),
            "line" => row = value.parse().ok(),
            "col" => col = value.parse().ok(),
            "title" => title = Some(value),
            _ => {}
        }
    }
    Some((
        file?,
        row.unwrap_or(1),
        col,
        level,
        unescape_data(message),
        title,
    ))
}

fn unescape_data(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

fn unescape_property(text: &str) -> String {
    unescape_data(&text.replace("%3A", ":").replace("%2C", ","))
}

/// `path:line[:col]: error|warning|note: message`.
fn compiler_line(line: &str) -> Option<Found> {
    let (path, rest) = line.split_once(':')?;
    let (row, rest) = rest.split_once(':')?;
    let row: u32 = row.trim().parse().ok()?;
    // An optional column, then the severity and the message.
    let (col, rest) = match rest.split_once(':') {
        Some((col, after)) if col.trim().parse::<u32>().is_ok() => (col.trim().parse().ok(), after),
        _ => (None, rest),
    };
    let (severity, message) = rest.split_once(':')?;
    let level = match severity.trim() {
        "error" | "fatal error" => AnnotationLevel::Failure,
        "warning" => AnnotationLevel::Warning,
        "note" => AnnotationLevel::Notice,
        _ => return None,
    };
    let path_ok =
        !path.is_empty() && !path.contains(char::is_whitespace) && path.contains(['.', '/']);
    if !path_ok || row == 0 {
        return None;
    }
    Some((
        path.to_owned(),
        row,
        col,
        level,
        message.trim().to_owned(),
        None,
    ))
}

/// `path` relative to the repository, or `None` when it names no file of
/// the commit.
fn relative(path: &str, src_dir: Option<&str>) -> Option<String> {
    let path = match src_dir.map(|d| d.trim_end_matches('/')) {
        Some(dir) if !dir.is_empty() => match path.strip_prefix(dir) {
            Some(rest) => rest.trim_start_matches('/'),
            None => path,
        },
        _ => path,
    };
    let path = path.strip_prefix("./").unwrap_or(path);
    if path.is_empty()
        || path.starts_with('/')
        || path.split('/').any(|part| part == "..")
        || path.contains('\\')
    {
        return None;
    }
    Some(path.to_owned())
}

/// The text without terminal escape sequences (colours, cursor moves,
/// window titles) and other control characters but tab.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    crate::page::ansi::scan(text, |piece| {
        if let crate::page::ansi::Piece::Char(c) = piece {
            out.push(c);
        }
    });
    out
}

/// At most `max` characters of `text`.
fn cap_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// The failed phase's last lines for `output.text`: colours removed, in a
/// fenced block (the fence longer than any run of backticks in the lines,
/// so no line can close it), the newest [`LOG_EXCERPT_LINES`] lines that
/// fit in `max_chars` with the heading, and how many earlier lines are
/// left out. Never longer than `max_chars` characters.
pub fn log_excerpt(phase: &str, lines: &[String], max_chars: usize) -> String {
    let clean: Vec<String> = lines
        .iter()
        .map(|l| strip_ansi(l).trim_end().to_owned())
        .collect();
    let longest_ticks = clean
        .iter()
        .map(|l| l.split(|c| c != '`').map(str::len).max().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest_ticks.max(2) + 1);
    let mut kept: Vec<&str> = Vec::new();
    // The heading's worst case: every line left out.
    let heading_room = format!(
        "The last lines of {phase} (the {} lines before are in the full log):\n\n{fence}text\n\n{fence}\n",
        clean.len()
    )
    .chars()
    .count();
    let mut used = heading_room;
    for line in clean.iter().rev().take(LOG_EXCERPT_LINES) {
        let cost = line.chars().count() + 1;
        if used + cost > max_chars {
            break;
        }
        used += cost;
        kept.push(line);
    }
    kept.reverse();
    let left_out = clean.len() - kept.len();
    let heading = if left_out == 0 {
        format!("The log of {phase}:")
    } else {
        format!("The last lines of {phase} (the {left_out} lines before are in the full log):")
    };
    let text = format!("{heading}\n\n{fence}text\n{}\n{fence}\n", kept.join("\n"));
    cap_chars(&text, max_chars)
}

/// The lines of `phase` in a CodeBuild log: from its last
/// `[Container] … Entering phase PHASE` to the `Phase complete: PHASE`
/// (or the next phase), markers left out. A log without the marker (cut
/// short, or not CodeBuild's) is given whole: its end is still the place
/// to look.
pub fn phase_lines<'a>(lines: &'a [String], phase: &str) -> &'a [String] {
    let entering = format!("Entering phase {phase}");
    let marker = |line: &str| line.starts_with("[Container] ");
    let Some(start) = lines
        .iter()
        .rposition(|l| marker(l) && l.trim_end().ends_with(&entering))
    else {
        return lines;
    };
    let body = &lines[start + 1..];
    let end = body
        .iter()
        .position(|l| {
            marker(l) && (l.contains("Phase complete: ") || l.contains("Entering phase "))
        })
        .unwrap_or(body.len());
    &body[..end]
}

/// The `external_id` Gantry gives the check run of `correlation_id`'s
/// build of `project`: GitHub sends it back with a re-run or a button.
pub fn external_id(correlation_id: &str, project: &str) -> String {
    format!("{correlation_id}/{project}")
}

/// The (correlation id, project) an [`external_id`] names; `None` for
/// another App's run or a malformed one.
pub fn parse_external_id(external_id: &str) -> Option<(&str, &str)> {
    let (correlation_id, project) = external_id.rsplit_once('/')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    (plain(correlation_id) && plain(project)).then_some((correlation_id, project))
}

/// A button on the check run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub label: &'static str,
    pub description: &'static str,
    pub identifier: &'static str,
}

/// The buttons, by what they ask for: the identifier GitHub sends back in
/// `check_run.requested_action`.
pub mod actions {
    use super::Action;

    /// On a fork's pull request held for approval: build it with secrets.
    pub const APPROVE: Action = Action {
        label: "Approve and build",
        description: "Build this fork's commit with secrets",
        identifier: "gantry-approve",
    };
    /// On a running build: stop it.
    pub const CANCEL: Action = Action {
        label: "Cancel",
        description: "Stop this build",
        identifier: "gantry-cancel",
    };

    /// The action an identifier names, if it is one of Gantry's.
    pub fn named(identifier: &str) -> Option<&'static Action> {
        [&APPROVE, &CANCEL]
            .into_iter()
            .find(|a| a.identifier == identifier)
    }
}

/// The buttons a run in `state` offers.
pub fn buttons(state: CheckState) -> Vec<Action> {
    match (state.status, state.conclusion) {
        (CheckStatus::Completed, Some(Conclusion::ActionRequired)) => vec![actions::APPROVE],
        (CheckStatus::Queued | CheckStatus::InProgress, _) => vec![actions::CANCEL],
        _ => Vec::new(),
    }
}

/// `output.title` and `output.summary` for a build's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub title: String,
    pub summary: String,
}

/// What the summary links to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links<'a> {
    /// The build's own page, which anyone on the pull request can open.
    pub build_page: Option<&'a str>,
    /// The CodeBuild console (for those with AWS access).
    pub console: Option<&'a str>,
    pub log: Option<&'a str>,
}

fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The title (the verdict's description) and a Markdown summary: the
/// result, duration, each phase with its status and time, the failed
/// phase, the image pushed, the buildspec's digest, and the links.
pub fn summary(
    description: &str,
    record: Option<&BuildRecord>,
    buildspec_digest: Option<&str>,
    links: &Links<'_>,
) -> Summary {
    let mut out = String::new();
    let finished = record.and_then(|r| r.finished.as_ref());
    out.push_str(&format!("**{description}**\n"));
    if let Some(f) = finished {
        if let Some(s) = f.duration_seconds {
            out.push_str(&format!("\nDuration: {}\n", duration(s)));
        }
        if let Some(phase) = &f.failed_phase {
            out.push_str(&format!("\nFailed in **{phase}**.\n"));
        }
        let phases: Vec<_> = f.phases.iter().filter(|p| p.status.is_some()).collect();
        if !phases.is_empty() {
            out.push_str("\n| Phase | Status | Time |\n|---|---|---|\n");
            for p in phases {
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    p.phase,
                    p.status.as_deref().unwrap_or_default(),
                    p.duration_seconds.map(duration).unwrap_or_default()
                ));
            }
        }
        if let Some(image) = &f.image_uri {
            out.push_str(&format!("\nImage pushed: `{image}`\n"));
        }
        if let Some(cache) = &f.layer_cache {
            out.push_str(&format!("\nLayer cache: {}\n", cache.describe()));
        }
        if f.artifacts.is_some()
            && let Some(page) = links.build_page
        {
            out.push_str(&format!(
                "\nArtifacts: [download from the build page]({page}#artifacts)\n"
            ));
        }
        if let Some(tests) = &f.tests {
            out.push_str(&format!("\n**Tests**: {}\n", tests.counts()));
            if !tests.first_failed.is_empty() {
                let more = tests.not_passed() > tests.first_failed.len() as u64;
                out.push_str(if more {
                    "\nFirst failed:\n"
                } else {
                    "\nFailed:\n"
                });
                for name in &tests.first_failed {
                    out.push_str(&format!("- `{}`\n", name.replace('`', "'")));
                }
            }
        }
    }
    if let Some(digest) = buildspec_digest {
        out.push_str(&format!("\nBuildspec: `{digest}`\n"));
    }
    let links: Vec<String> = [
        ("Build page", links.build_page),
        ("Log", links.log),
        ("CodeBuild console", links.console),
    ]
    .into_iter()
    .filter_map(|(name, url)| Some(format!("[{name}]({})", url?)))
    .collect();
    if !links.is_empty() {
        out.push_str(&format!("\n{}\n", links.join(" · ")));
    }
    Summary {
        title: cap_chars(description, 255),
        summary: cap_chars(&out, MAX_OUTPUT_CHARS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_result_has_the_check_state_github_shows() {
        use BuildResult as R;
        let open = |s| CheckState::open(s);
        let done = |c| CheckState::done(c);
        assert_eq!(state(R::Queued, None, false), open(CheckStatus::Queued));
        assert_eq!(
            state(R::Queued, None, true),
            done(Conclusion::ActionRequired)
        );
        assert_eq!(
            state(R::Started, None, false),
            open(CheckStatus::InProgress)
        );
        assert_eq!(state(R::Fixed, None, false), done(Conclusion::Success));
        assert_eq!(
            state(R::Failed, Some(&BuildStatus::TimedOut), false),
            done(Conclusion::TimedOut)
        );
        assert_eq!(
            state(R::Failed, Some(&BuildStatus::Failed), false),
            done(Conclusion::Failure)
        );
        assert_eq!(state(R::Rejected, None, false), done(Conclusion::Failure));
        assert_eq!(
            state(R::Superseded, None, false),
            done(Conclusion::Cancelled)
        );
        assert_eq!(state(R::Stopped, None, false), done(Conclusion::Cancelled));
        assert_eq!(state(R::Skipped, None, false), done(Conclusion::Skipped));
        // Every result maps, and only a completed run has a conclusion.
        for r in BuildResult::ALL {
            let s = state(r, None, false);
            assert_eq!(s.conclusion.is_some(), s.status == CheckStatus::Completed);
        }
    }

    #[test]
    fn buildspec_diagnostics_become_annotations_at_their_line_and_column() {
        let diags = vec![
            Diagnostic {
                line: 5,
                col: 9,
                severity: Severity::Error,
                path: "phases.build.commands[0]".into(),
                message: "a command must be a string".into(),
            },
            Diagnostic {
                line: 2,
                col: 1,
                severity: Severity::Warning,
                path: String::new(),
                message: "CodeBuild ignores `steps`".into(),
            },
        ];
        let a = diagnostic_annotations("ci/buildspec.yml", &diags);
        assert_eq!(a[0].path, "ci/buildspec.yml");
        assert_eq!((a[0].start_line, a[0].start_column), (5, Some(9)));
        assert_eq!(a[0].annotation_level, AnnotationLevel::Failure);
        assert_eq!(a[0].title.as_deref(), Some("phases.build.commands[0]"));
        assert_eq!(a[1].annotation_level, AnnotationLevel::Warning);
        assert_eq!(a[1].title, None);
        let json = serde_json::to_value(&a[1]).expect("json");
        assert_eq!(json["annotation_level"], "warning");
    }

    #[test]
    fn workflow_commands_and_compiler_lines_in_the_log_become_annotations() {
        let log = [
            "\u{1b}[31m::error file=src/lib.rs,line=12,col=5,title=Test%2C failed::expected 2, got 3%0Aat line 12\u{1b}[0m",
            "::warning file=README.md,line=3::trailing space",
            "/codebuild/output/src1/src/app/main.c:40:7: error: 'x' undeclared",
            "lib/util.py:9: warning: unused import",
            "lib/io.py:12: error: 3: a message with a number and: colons",
            "/usr/include/stdio.h:10:1: error: outside the checkout",
            "../secret/file.c:1:1: error: climbs out",
            "Running command make",
            "::debug::not an annotation",
            "http://example.com:80: error: not a file",
        ];
        let a = log_annotations(log, Some("/codebuild/output/src1/src"));
        let got: Vec<(&str, u32, Option<u32>, AnnotationLevel)> = a
            .iter()
            .map(|a| {
                (
                    a.path.as_str(),
                    a.start_line,
                    a.start_column,
                    a.annotation_level,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("src/lib.rs", 12, Some(5), AnnotationLevel::Failure),
                ("README.md", 3, None, AnnotationLevel::Warning),
                ("app/main.c", 40, Some(7), AnnotationLevel::Failure),
                ("lib/util.py", 9, None, AnnotationLevel::Warning),
                ("lib/io.py", 12, None, AnnotationLevel::Failure),
            ]
        );
        assert_eq!(a[0].message, "expected 2, got 3\nat line 12");
        assert_eq!(a[0].title.as_deref(), Some("Test, failed"));
        assert_eq!(a[2].message, "'x' undeclared");
        assert_eq!(a[4].message, "3: a message with a number and: colons");
    }

    #[test]
    fn the_failed_phase_is_found_between_codebuild_markers() {
        let log: Vec<String> = [
            "[Container] 2026/12/01 10:00:00.000001 Entering phase INSTALL",
            "installing",
            "[Container] 2026/12/01 10:00:01.000001 Phase complete: INSTALL State: SUCCEEDED",
            "[Container] 2026/12/01 10:00:01.000002 Entering phase BUILD",
            "compiling",
            "src/a.rs:3:5: error: nope",
            "[Container] 2026/12/01 10:00:09.000001 Command did not exit successfully make exit status 2",
            "[Container] 2026/12/01 10:00:09.000002 Phase complete: BUILD State: FAILED",
            "[Container] 2026/12/01 10:00:09.000003 Entering phase POST_BUILD",
            "cleaning up",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            phase_lines(&log, "BUILD"),
            &log[4..7],
            "the phase's own lines, CodeBuild's reason included"
        );
        assert_eq!(phase_lines(&log, "POST_BUILD"), &log[9..]);
        // No marker: the whole log.
        assert_eq!(phase_lines(&log[4..6], "BUILD"), &log[4..6]);
        // `Entering phase BUILD` must not match PRE_BUILD's marker.
        let pre = vec![
            "[Container] x Entering phase PRE_BUILD".to_owned(),
            "p".into(),
        ];
        assert_eq!(phase_lines(&pre, "BUILD"), &pre[..]);
    }

    #[test]
    fn log_annotations_are_capped() {
        let lines: Vec<String> = (1..=500)
            .map(|i| format!("src/a.c:{i}:1: error: e{i}"))
            .collect();
        let a = log_annotations(lines.iter().map(String::as_str), None);
        assert_eq!(a.len(), MAX_LOG_ANNOTATIONS);
        assert_eq!(a[0].start_line, 1);
    }

    #[test]
    fn the_excerpt_keeps_the_last_lines_without_colours_and_says_what_it_left_out() {
        let lines: Vec<String> = (1..=1000)
            .map(|i| format!("\u{1b}[32mline {i}\u{1b}[0m"))
            .collect();
        let text = log_excerpt("BUILD", &lines, MAX_OUTPUT_CHARS);
        assert!(text.contains("line 1000\n"));
        assert!(text.contains(&format!("line {}\n", 1000 - LOG_EXCERPT_LINES + 1)));
        assert!(!text.contains(&format!("line {}\n", 1000 - LOG_EXCERPT_LINES)));
        assert!(text.starts_with("The last lines of BUILD (the 800 lines before"));
        assert!(!text.contains('\u{1b}'));
        // A line of backticks cannot close the fence early.
        let tricky = vec!["```".to_owned(), "after".to_owned()];
        let text = log_excerpt("BUILD", &tricky, MAX_OUTPUT_CHARS);
        assert!(text.contains("````text\n```\nafter\n````"), "{text}");
    }

    #[test]
    fn the_buttons_follow_the_state() {
        let held = state(BuildResult::Queued, None, true);
        assert_eq!(buttons(held), [actions::APPROVE]);
        assert_eq!(
            buttons(state(BuildResult::Started, None, false)),
            [actions::CANCEL]
        );
        assert!(buttons(state(BuildResult::Succeeded, None, false)).is_empty());
        for a in [actions::APPROVE, actions::CANCEL] {
            assert!(a.label.chars().count() <= 20, "{}", a.label);
            assert!(a.description.chars().count() <= 40, "{}", a.description);
            assert!(a.identifier.chars().count() <= 20, "{}", a.identifier);
            assert_eq!(actions::named(a.identifier), Some(&a));
        }
        assert_eq!(actions::named("rm -rf"), None);
    }

    #[test]
    fn the_summary_says_result_duration_phases_image_digest_and_links() {
        use crate::records::{Finished, PhaseTiming};
        let mut record = crate::fixtures::build_record(&crate::fixtures::push_source());
        let phase = |p: &str, s: Option<&str>, d: Option<u64>| PhaseTiming {
            phase: p.into(),
            status: s.map(str::to_owned),
            duration_seconds: d,
        };
        record.finished = Some(Finished {
            status: BuildStatus::Failed,
            finished_at_ms: 0,
            duration_seconds: Some(125),
            failed_phase: Some("BUILD".into()),
            phases: vec![
                phase("INSTALL", Some("SUCCEEDED"), Some(4)),
                phase("BUILD", Some("FAILED"), Some(121)),
                phase("COMPLETED", None, None),
            ],
            image_uri: Some("123.dkr.ecr.eu-west-1.amazonaws.com/w:9f2c1e4".into()),
            layer_cache: Some(crate::exported::LayerCache {
                cached: 0,
                steps: 6,
            }),
            tests: Some({
                let mut t = crate::test_reports::TestResults::default();
                t.add_report([("SUCCEEDED", 118), ("FAILED", 3)]);
                t.add_failed_name("login `rejects` a bad password");
                t.add_failed_name("checkout totals");
                t
            }),
            artifacts: Some(crate::records::ArtifactsPlace {
                bucket: "b".into(),
                prefix: "artifacts/p/u/".into(),
            }),
            log: None,
        });
        let s = summary(
            "failed in BUILD after 2m 05s",
            Some(&record),
            Some("sha256:abc"),
            &Links {
                build_page: Some("https://builds.example.com/b/7f1c"),
                console: Some("https://console.aws.amazon.com/x"),
                log: None,
            },
        );
        assert_eq!(s.title, "failed in BUILD after 2m 05s");
        for part in [
            "Duration: 2m 05s",
            "Failed in **BUILD**",
            "| INSTALL | SUCCEEDED | 4s |",
            "| BUILD | FAILED | 2m 01s |",
            "Image pushed: `123.dkr.ecr.eu-west-1.amazonaws.com/w:9f2c1e4`",
            "Layer cache: cold: none of 6 steps from the cache",
            "**Tests**: 3 failed, 118 passed",
            "Artifacts: [download from the build page](https://builds.example.com/b/7f1c#artifacts)",
            "First failed:\n- `login 'rejects' a bad password`\n- `checkout totals`\n",
            "Buildspec: `sha256:abc`",
            "[Build page](https://builds.example.com/b/7f1c) · [CodeBuild console](https://console.aws.amazon.com/x)",
        ] {
            assert!(s.summary.contains(part), "{part} not in:\n{}", s.summary);
        }
        // The closing phase without a status is no row.
        assert!(!s.summary.contains("COMPLETED"), "{}", s.summary);
    }

    proptest! {
        /// Whatever the log holds, the excerpt fits GitHub's limit, and no
        /// escape character gets through.
        #[test]
        fn the_excerpt_never_exceeds_its_bound(
            lines in proptest::collection::vec(".{0,300}", 0..300),
            max in 200usize..5000,
        ) {
            let text = log_excerpt("BUILD", &lines, max);
            prop_assert!(text.chars().count() <= max);
            prop_assert!(!text.contains('\x1b'), "an escape got through");
        }

        /// Any line at all: parsing never panics, and every annotation names
        /// a relative path inside the checkout.
        #[test]
        fn log_annotations_name_only_files_of_the_checkout(
            lines in proptest::collection::vec(".{0,200}", 0..50),
        ) {
            for a in log_annotations(lines.iter().map(String::as_str), Some("/src")) {
                prop_assert!(!a.path.starts_with('/'));
                prop_assert!(!a.path.split('/').any(|p| p == ".."));
                prop_assert!(a.start_line >= 1);
            }
        }
    }
}
