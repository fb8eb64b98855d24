//! What reporting a verdict comes to, decided before any I/O: which chat
//! routes hear of it, the message they get, the branch's new last result,
//! the badge. `gantry_aws::report` carries it out (claims, GitHub, chat,
//! S3).

use crate::config::{Route, When};
use crate::events::BuildSource;
use crate::notify::{BuildResult, Message, PullRequestInfo};
use crate::records::BuildRecord;
use crate::status::Verdict;

/// A result a build ended with (not a skip, a hold or a supersession).
pub fn is_build_result(result: BuildResult) -> bool {
    matches!(
        result,
        BuildResult::Succeeded
            | BuildResult::Fixed
            | BuildResult::Failed
            | BuildResult::Errored
            | BuildResult::Stopped
            | BuildResult::Rejected
    )
}

pub fn is_failure(result: BuildResult) -> bool {
    matches!(
        result,
        BuildResult::Failed | BuildResult::Errored | BuildResult::Rejected
    )
}

/// Does `route` hear about this result?
pub fn route_wants(
    route: &Route,
    source: &BuildSource,
    result: BuildResult,
    previous: Option<&str>,
) -> bool {
    let branch = source
        .pull_request
        .as_ref()
        .map(|pr| pr.base_branch.as_str())
        .or(source.branch.as_deref());
    if let Some(globs) = &route.branches
        && !branch.is_some_and(|b| globs.is_match(b))
    {
        return false;
    }
    match route.when {
        When::Always => result.is_final() && result != BuildResult::Skipped,
        When::Failures => is_failure(result),
        // A build's result that differs from the previous one of its branch
        // or pull request ("fixed" always does); the first build counts.
        When::Changes => is_build_result(result) && previous.is_none_or(|p| p != result.label()),
    }
}

/// The message the chats get about `verdict`.
pub fn message(
    source: &BuildSource,
    project: &str,
    correlation_id: &str,
    verdict: &Verdict,
    record: Option<&BuildRecord>,
) -> Message {
    let finished = record.and_then(|r| r.finished.as_ref());
    Message {
        project: project.to_owned(),
        repository: source.repository.full_name.clone(),
        repository_url: source.repository.html_url.clone(),
        branch: source.branch.clone(),
        tag: source.tag.clone(),
        pull_request: source.pull_request.as_ref().map(|pr| PullRequestInfo {
            number: pr.number,
            title: pr.title.clone(),
            author: pr.author.clone(),
            url: pr.url.clone(),
        }),
        commit_sha: source.commit_sha.clone(),
        commit_message: source.head_commit.as_ref().map(|c| c.message.clone()),
        commit_url: source
            .head_commit
            .as_ref()
            .and_then(|c| c.url.clone())
            .or_else(|| {
                Some(format!(
                    "{}/commit/{}",
                    source.repository.html_url, source.commit_sha
                ))
            }),
        author: source
            .pull_request
            .as_ref()
            .map(|pr| pr.author.clone())
            .or_else(|| source.pusher.clone())
            .or_else(|| source.sender.clone()),
        result: verdict.result,
        summary: verdict.description.clone(),
        duration_seconds: finished.and_then(|f| f.duration_seconds),
        failed_phase: finished.and_then(|f| f.failed_phase.clone()),
        build_url: record.map(|r| r.build_url.clone()),
        logs_url: record.and_then(|r| r.logs_url.clone()),
        correlation_id: correlation_id.to_owned(),
    }
}
