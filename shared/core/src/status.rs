//! What each moment of a build says on GitHub: the commit status (state,
//! description within 140 characters, link) and the result chat hears.
//!
//! Plain functions over the events; build-events posts what they decide.
//! Every commit Gantry saw ends with a final status: skipped commits
//! `success` with the reason, rejected ones `failure` with the line, builds
//! their result, superseded builds as configured.

use crate::codebuild_events::{BuildStatus, CodeBuildDetail};
use crate::config::SupersededState;
use crate::events::{
    BuildHeld, BuildRejected, BuildRequested, BuildSkipped, BuildStarted, BuildSuperseded,
    BuildspecLocation, HoldCode, RejectedAt,
};
use crate::github::checks::{Annotation, diagnostic_annotations};
use crate::github::statuses::{StatusState, description};
use crate::notify::{BuildResult, format_duration};
use crate::records::BuildRecord;

/// One status to post, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What the status is about: the build id, or the delivery id when no
    /// build was started. Effects are claimed per (subject, state).
    pub subject: String,
    pub state: StatusState,
    pub description: String,
    pub target_url: Option<String>,
    pub result: BuildResult,
    /// A final status: never followed by `pending` for the same subject.
    pub is_final: bool,
    /// A fork's commit held for a maintainer's approval: as a check run,
    /// `action_required` with the Approve button.
    pub awaiting_approval: bool,
    /// Where on the files the check run points (a rejected buildspec's
    /// diagnostics).
    pub annotations: Vec<Annotation>,
}

pub fn skipped(e: &BuildSkipped) -> Verdict {
    Verdict {
        subject: e.correlation_id.to_string(),
        state: StatusState::Success,
        description: description(&format!("skipped: {}", e.reason.message)),
        target_url: e
            .source
            .compare_url
            .clone()
            .or_else(|| Some(e.source.repository.html_url.clone())),
        result: BuildResult::Skipped,
        is_final: true,
        awaiting_approval: false,
        annotations: Vec::new(),
    }
}

/// A file in the built repository → its page at the line.
fn buildspec_link(e: &BuildRejected, line: u32) -> Option<String> {
    let Some(BuildspecLocation::Repository {
        repo,
        path,
        commit: sha,
    }) = &e.buildspec_location
    else {
        return None;
    };
    if !repo.eq_ignore_ascii_case(&e.source.repository.full_name) {
        return None;
    }
    Some(format!(
        "{}/blob/{sha}/{path}#L{line}",
        e.source.repository.html_url
    ))
}

pub fn rejected(e: &BuildRejected) -> Verdict {
    let (state, text, target_url) = match e.stage {
        RejectedAt::Buildspec => match e.diagnostics.first() {
            Some(d) => {
                let file = e
                    .buildspec_location
                    .as_ref()
                    .map_or("buildspec", BuildspecLocation::path);
                let more = match e.diagnostic_count {
                    0 | 1 => String::new(),
                    n => format!(" (+{} more)", n - 1),
                };
                (
                    StatusState::Failure,
                    format!("{file}:{}:{}: {}{more}", d.line, d.col, d.message),
                    buildspec_link(e, d.line),
                )
            }
            None => (StatusState::Failure, e.reason.clone(), None),
        },
        RejectedAt::Secrets => (StatusState::Failure, e.reason.clone(), None),
        RejectedAt::Start => (
            StatusState::Error,
            format!("not started: {}", e.reason),
            None,
        ),
    };
    Verdict {
        subject: e.correlation_id.to_string(),
        state,
        description: description(&text),
        target_url,
        result: BuildResult::Rejected,
        is_final: true,
        awaiting_approval: false,
        annotations: annotations_at_commit(e),
    }
}

/// The diagnostics as annotations, when the buildspec is a file of the
/// commit itself (not a fork's base branch, not a project default):
/// GitHub places annotations on the check run's commit.
fn annotations_at_commit(e: &BuildRejected) -> Vec<Annotation> {
    match &e.buildspec_location {
        Some(BuildspecLocation::Repository { repo, path, commit })
            if e.stage == RejectedAt::Buildspec
                && repo.eq_ignore_ascii_case(&e.source.repository.full_name)
                && commit.eq_ignore_ascii_case(e.source.commit_sha.as_str()) =>
        {
            diagnostic_annotations(path, &e.diagnostics)
        }
        _ => Vec::new(),
    }
}

/// A delivery accepted: its build is queued (a check run's first state;
/// no status is posted for it).
pub fn requested(e: &BuildRequested) -> Verdict {
    Verdict {
        subject: e.correlation_id.to_string(),
        state: StatusState::Pending,
        description: description("queued"),
        target_url: None,
        result: BuildResult::Queued,
        is_final: false,
        awaiting_approval: false,
        annotations: Vec::new(),
    }
}

/// The step of the chain a commit never got past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// validate-buildspec (`Build Requested`).
    Validation,
    /// inject-secrets (`Buildspec Validated`).
    Secrets,
    /// start-build (`Secrets Resolved`).
    Start,
}

/// A commit whose step failed every retry: `error`, final, saying which
/// step and why, so it is never left pending (or "queued").
pub fn unfinished(step: Unfinished, correlation_id: &str, reason: &str) -> Verdict {
    let what = match step {
        Unfinished::Validation => "buildspec not validated",
        Unfinished::Secrets => "secrets not resolved",
        Unfinished::Start => "not started",
    };
    Verdict {
        subject: correlation_id.to_owned(),
        state: StatusState::Error,
        description: description(&format!("{what}: {reason}")),
        target_url: None,
        result: BuildResult::Errored,
        is_final: true,
        awaiting_approval: false,
        annotations: Vec::new(),
    }
}

pub fn held(e: &BuildHeld) -> Verdict {
    Verdict {
        subject: e.correlation_id.to_string(),
        state: StatusState::Pending,
        description: description(&e.message),
        target_url: e
            .source
            .pull_request
            .as_ref()
            .map(|pr| pr.url.clone())
            .filter(|_| e.code == HoldCode::Approval),
        result: BuildResult::Queued,
        is_final: false,
        awaiting_approval: e.code == HoldCode::Approval,
        annotations: Vec::new(),
    }
}

pub fn started(e: &BuildStarted) -> Verdict {
    let text = match &e.withheld {
        Some(why) => format!("building; {why}"),
        None => "building".to_owned(),
    };
    Verdict {
        subject: e.build_id.to_string(),
        state: StatusState::Pending,
        description: description(&text),
        target_url: Some(e.build_url.clone()),
        result: BuildResult::Started,
        is_final: false,
        awaiting_approval: false,
        annotations: Vec::new(),
    }
}

pub fn superseded(e: &BuildSuperseded, setting: SupersededState) -> Verdict {
    Verdict {
        subject: e
            .build_id
            .as_ref()
            .map_or_else(|| e.correlation_id.to_string(), ToString::to_string),
        state: match setting {
            SupersededState::Error => StatusState::Error,
            SupersededState::Failure => StatusState::Failure,
            SupersededState::Success => StatusState::Success,
        },
        description: description(&format!(
            "superseded by {}",
            e.superseded_by.commit_sha.short()
        )),
        target_url: None,
        result: BuildResult::Superseded,
        is_final: true,
        awaiting_approval: false,
        annotations: Vec::new(),
    }
}

/// A build that ended; `None` while it runs, and for a stop Gantry made
/// itself (the `Build Superseded` status says that).
pub fn finished(record: &BuildRecord, detail: &CodeBuildDetail) -> Option<Verdict> {
    let status = detail.build_status.as_ref()?;
    let took = detail
        .duration_seconds()
        .map(|s| format!(" after {}", format_duration(s)))
        .unwrap_or_default();
    let phase = detail.failed_phase().unwrap_or("the build");
    let (state, mut text, result) = match status {
        BuildStatus::Succeeded => (
            StatusState::Success,
            format!(
                "passed{}",
                detail
                    .duration_seconds()
                    .map(|s| format!(" in {}", format_duration(s)))
                    .unwrap_or_default()
            ),
            BuildResult::Succeeded,
        ),
        BuildStatus::Failed => (
            StatusState::Failure,
            format!("failed in {phase}{took}"),
            BuildResult::Failed,
        ),
        BuildStatus::TimedOut => (
            StatusState::Failure,
            format!("timed out in {phase}{took}"),
            BuildResult::Failed,
        ),
        BuildStatus::Fault => (
            StatusState::Error,
            format!("CodeBuild fault in {phase}{took}"),
            BuildResult::Errored,
        ),
        BuildStatus::Stopped if record.superseded_by.is_some() => return None,
        BuildStatus::Stopped => (
            StatusState::Error,
            format!("stopped in {phase}{took}"),
            BuildResult::Stopped,
        ),
        _ => return None,
    };
    // The counts before the names: a description cut at 140 characters
    // loses names first.
    if let Some(tests) = record.finished.as_ref().and_then(|f| f.tests.as_ref()) {
        text.push_str(" · ");
        text.push_str(&tests.line());
    }
    Some(Verdict {
        subject: record.build_id.to_string(),
        state,
        description: description(&text),
        target_url: Some(
            detail
                .logs_link()
                .map(str::to_owned)
                .filter(|_| state != StatusState::Success)
                .unwrap_or_else(|| record.build_url.clone()),
        ),
        result,
        is_final: true,
        awaiting_approval: false,
        annotations: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Diagnostic, Severity};
    use crate::events::{BuildSource, SkipCode, SkipReason, SupersededBy};

    fn source() -> BuildSource {
        crate::fixtures::push_source()
    }

    #[test]
    fn a_skipped_commit_succeeds_saying_why() {
        let v = skipped(&BuildSkipped {
            v: 1,
            correlation_id: "d1".into(),
            project: "p".into(),
            reason: SkipReason {
                code: SkipCode::Directive,
                message: "[skip ci] in the commit message".into(),
            },
            source: source(),
        });
        assert_eq!(v.state, StatusState::Success);
        assert_eq!(v.description, "skipped: [skip ci] in the commit message");
        assert!(v.is_final);
        assert_eq!(v.subject, "d1");
    }

    #[test]
    fn a_rejected_buildspec_fails_with_the_first_line_and_column_and_links_to_it() {
        let d = |line, col, message: &str| Diagnostic {
            line,
            col,
            severity: Severity::Error,
            path: "phases.build.commands[0]".into(),
            message: message.into(),
        };
        let e = BuildRejected {
            v: 1,
            correlation_id: "d2".into(),
            project: "p".into(),
            source: source(),
            stage: RejectedAt::Buildspec,
            reason: "buildspec has 2 errors".into(),
            buildspec_location: BuildspecLocation::parse(
                "octo-org/widgets:ci/buildspec.yml@9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070",
            ),
            diagnostics: vec![d(5, 9, "a command must be a string"), d(9, 1, "x")],
            diagnostic_count: 2,
            secrets: Vec::new(),
        };
        let v = rejected(&e);
        assert_eq!(v.state, StatusState::Failure);
        assert_eq!(
            v.description,
            "ci/buildspec.yml:5:9: a command must be a string (+1 more)"
        );
        assert_eq!(
            v.target_url.as_deref(),
            Some(
                "https://github.com/octo-org/widgets/blob/9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070/ci/buildspec.yml#L5"
            )
        );
        let start = rejected(&BuildRejected {
            stage: RejectedAt::Start,
            reason: "CodeBuild stayed at its build limit".into(),
            diagnostics: Vec::new(),
            ..e
        });
        assert_eq!(start.state, StatusState::Error);
        assert!(start.description.starts_with("not started: "));
    }

    #[test]
    fn a_finished_build_with_test_reports_gives_the_counts_then_the_first_failed_names() {
        let mut record = crate::fixtures::build_record(&source());
        let detail: CodeBuildDetail = serde_json::from_value(serde_json::json!({
            "build-status": "FAILED",
            "project-name": "p",
            "build-id": "arn:aws:codebuild:us-east-1:123456789012:build/p:1",
            "additional-information": {"phases": [
                {"phase-type": "BUILD", "phase-status": "FAILED", "duration-in-seconds": 61}
            ]}
        }))
        .expect("detail");
        let without = finished(&record, &detail).expect("a verdict");
        assert_eq!(without.description, "failed in BUILD after 1m 01s");
        let mut tests = crate::test_reports::TestResults::default();
        tests.add_report([("SUCCEEDED", 118), ("FAILED", 2)]);
        tests.add_failed_name("orders::totals_include_tax");
        tests.add_failed_name(&"very_long_test_name_".repeat(20));
        record.finished = Some(crate::records::Finished {
            status: BuildStatus::Failed,
            finished_at_ms: 0,
            duration_seconds: None,
            failed_phase: Some("BUILD".into()),
            phases: Vec::new(),
            image_uri: None,
            layer_cache: None,
            tests: Some(tests),
            artifacts: None,
            log: None,
        });
        let v = finished(&record, &detail).expect("a verdict");
        assert!(
            v.description
                .starts_with("failed in BUILD after 1m 01s · tests: 2 failed, 118 passed; orders::totals_include_tax, very_long"),
            "{}",
            v.description
        );
        assert!(v.description.chars().count() <= 140, "{}", v.description);
        assert_eq!(v.state, StatusState::Failure);
    }

    #[test]
    fn a_superseded_build_takes_the_configured_state_and_names_the_newer_commit() {
        let e = BuildSuperseded {
            v: 1,
            correlation_id: "d3".into(),
            project: "p".into(),
            source: source(),
            build_id: Some("p:1".into()),
            superseded_by: SupersededBy {
                commit_sha: "1a2b3c4d5e6f".into(),
                correlation_id: "d4".into(),
            },
        };
        let v = superseded(&e, SupersededState::Error);
        assert_eq!(
            (v.state, v.description.as_str()),
            (StatusState::Error, "superseded by 1a2b3c4")
        );
        assert_eq!(v.subject, "p:1");
        assert_eq!(
            superseded(&e, SupersededState::Success).state,
            StatusState::Success
        );
    }

    #[test]
    fn descriptions_never_exceed_githubs_140_characters() {
        let long = "x".repeat(500);
        let v = skipped(&BuildSkipped {
            v: 1,
            correlation_id: "d".into(),
            project: "p".into(),
            reason: SkipReason {
                code: SkipCode::Paths,
                message: long,
            },
            source: source(),
        });
        assert!(v.description.chars().count() <= 140);
    }
}
