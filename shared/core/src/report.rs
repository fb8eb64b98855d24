//! What reporting a verdict comes to, decided before any I/O: which chat
//! routes hear of it, the message they get, the branch's new last result,
//! the badge. `gantry_aws::report` carries it out (claims, GitHub, chat,
//! S3).

use crate::badge::{self, BadgeState};
use crate::config::{RepositoryRules, Route, When};
use crate::events::BuildSource;
use crate::github::statuses::{CommitStatus, StatusState};
use crate::notify::{BuildResult, Message, PullRequestInfo};
use crate::records::{BuildRecord, LastResult};
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
    previous: Option<BuildResult>,
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
        When::Changes => is_build_result(result) && previous != Some(result),
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
        // A named build says which.
        project: match &source.member {
            Some(m) => format!("{project} ({})", m.name),
            None => project.to_owned(),
        },
        repository: source.repository.full_name.to_string(),
        repository_url: source.repository.html_url.clone(),
        branch: source.branch.clone(),
        tag: source.tag.clone(),
        pull_request: source.pull_request.as_ref().map(|pr| PullRequestInfo {
            number: pr.number,
            title: pr.title.clone(),
            author: pr.author.clone(),
            url: pr.url.clone(),
        }),
        commit_sha: source.commit_sha.to_string(),
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

/// A badge to write: where, for which branch, saying what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeUpdate {
    pub key: String,
    pub branch: String,
    pub state: BadgeState,
}

/// What reporting one verdict comes to, decided before any I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The verdict as reported: a success after a failure is "fixed".
    pub verdict: Verdict,
    /// The commit status to post (its context from gantry.yaml).
    pub status: CommitStatus,
    /// The chat routes that hear of it, by their index in the repository's
    /// `notifications` (the index is part of each message's claim).
    pub routes: Vec<usize>,
    /// The message they get.
    pub message: Message,
    /// The branch's (or pull request's) new last result, after a build's end.
    pub last_result: Option<LastResult>,
    /// The branch's badge, after a build's end.
    pub badge: Option<BadgeUpdate>,
}

/// Does planning `verdict` need the previous result of its branch? Only a
/// build's end is compared ("fixed", "changes"); a pending status needs no
/// read.
pub fn needs_history(verdict: &Verdict) -> bool {
    verdict.is_final && is_build_result(verdict.result)
}

/// The badge of a branch build of `source` (not a pull request's), saying
/// `state`: private for a private repository unless gantry.yaml lists it.
pub fn badge(
    rules: Option<&RepositoryRules>,
    source: &BuildSource,
    state: BadgeState,
) -> Option<BadgeUpdate> {
    let (None, Some(branch)) = (&source.pull_request, &source.branch) else {
        return None;
    };
    let listed = rules.is_some_and(|r| r.public_badge);
    Some(BadgeUpdate {
        key: badge::key_for(
            &source.repository.full_name,
            branch,
            source.repository.private,
            listed,
        ),
        branch: branch.clone(),
        state,
    })
}

/// Plans the report of `verdict` about `source`: `previous` is the branch's
/// last result (read when [`needs_history`] says so), `record` the build's.
pub fn plan(
    rules: Option<&RepositoryRules>,
    project: &str,
    correlation_id: &str,
    source: &BuildSource,
    mut verdict: Verdict,
    record: Option<&BuildRecord>,
    previous: Option<&LastResult>,
) -> Plan {
    let previous_failed = previous.is_some_and(|p| is_failure(p.result));
    if verdict.result == BuildResult::Succeeded && previous_failed {
        verdict.result = BuildResult::Fixed;
    }
    let member = source.member.as_ref().map(|m| m.name.as_str());
    let context = match (rules, member) {
        (Some(r), member) => r.context_of(project, member),
        (None, Some(member)) => format!("gantry/{member}"),
        (None, None) => format!("gantry/{project}"),
    };
    let status = CommitStatus {
        state: verdict.state,
        context,
        description: verdict.description.clone(),
        target_url: verdict.target_url.clone(),
    };
    // The chats hear only of an outcome, never of "pending".
    let routes = match rules {
        Some(rules) if verdict.is_final => rules
            .notifications
            .iter()
            .enumerate()
            .filter(|(_, r)| route_wants(r, source, verdict.result, previous.map(|p| p.result)))
            .map(|(i, _)| i)
            .collect(),
        _ => Vec::new(),
    };
    let message = message(source, project, correlation_id, &verdict, record);
    let ended = verdict.is_final && is_build_result(verdict.result);
    let last_result = record.filter(|_| ended).map(|r| LastResult {
        result: verdict.result,
        build_id: r.build_id.clone(),
        commit_sha: source.commit_sha.clone(),
    });
    // A named build is one part of its commit: the branch's badge is the
    // aggregate's (`gantry_aws::aggregate`), not the last member's.
    let badge = if ended && record.is_some() && source.member.is_none() {
        let state = match verdict.state {
            StatusState::Success => BadgeState::Passing,
            StatusState::Failure => BadgeState::Failing,
            _ => BadgeState::Error,
        };
        badge(rules, source, state)
    } else {
        None
    };
    Plan {
        verdict,
        status,
        routes,
        message,
        last_result,
        badge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::events::PullRequestRef;

    fn rules() -> Config {
        let text = "\
version: 1
repositories:
  - name: octo-org/*
    project: gantry-build
    status:
      context: ci/widgets
    notifications:
      - provider: slack
        url-parameter: /gantry/notify/all
        when: always
      - provider: teams
        url-parameter: /gantry/notify/failures
        when: failures
      - provider: discord
        url-parameter: /gantry/notify/changes
";
        Config::parse(text).expect("valid").0
    }

    fn source(private: bool) -> BuildSource {
        let mut s = crate::fixtures::push_source();
        s.repository.private = private;
        s
    }

    fn record(source: &BuildSource) -> BuildRecord {
        crate::fixtures::build_record(source)
    }

    fn verdict(state: StatusState, result: BuildResult, is_final: bool) -> Verdict {
        Verdict {
            subject: "gantry-build:7f1c".into(),
            state,
            description: "passed in 1m".into(),
            target_url: None,
            result,
            is_final,
            awaiting_approval: false,
            annotations: Vec::new(),
        }
    }

    fn last(result: BuildResult) -> LastResult {
        LastResult {
            result,
            build_id: "gantry-build:0001".into(),
            commit_sha: "a".repeat(40).into(),
        }
    }

    fn routes(plan: &Plan) -> Vec<usize> {
        plan.routes.clone()
    }

    /// The plan for `octo-org/widgets` under [`rules`].
    fn plan_of(
        source: &BuildSource,
        verdict: Verdict,
        record: Option<&BuildRecord>,
        previous: Option<&LastResult>,
    ) -> Plan {
        let config = rules();
        plan(
            config.repository("octo-org/widgets"),
            "gantry-build",
            "d1",
            source,
            verdict,
            record,
            previous,
        )
    }

    #[test]
    fn a_success_after_a_failure_is_fixed_and_the_changes_route_hears_it() {
        let source = source(false);
        let record = record(&source);
        let plan = plan_of(
            &source,
            verdict(StatusState::Success, BuildResult::Succeeded, true),
            Some(&record),
            Some(&last(BuildResult::Failed)),
        );
        assert_eq!(plan.verdict.result, BuildResult::Fixed);
        assert_eq!(plan.status.context, "ci/widgets");
        assert_eq!(routes(&plan), [0, 2], "always and changes; not failures");
        assert_eq!(
            plan.last_result.as_ref().map(|l| l.result),
            Some(BuildResult::Fixed)
        );
        let badge = plan.badge.expect("a branch build's badge");
        assert_eq!(badge.key, "badges/octo-org/widgets/main.svg");
        assert_eq!(badge.state, BadgeState::Passing);
        assert_eq!(plan.message.result, BuildResult::Fixed);
    }

    #[test]
    fn the_same_success_again_is_no_change() {
        let source = source(false);
        let record = record(&source);
        let plan = plan_of(
            &source,
            verdict(StatusState::Success, BuildResult::Succeeded, true),
            Some(&record),
            Some(&last(BuildResult::Succeeded)),
        );
        assert_eq!(plan.verdict.result, BuildResult::Succeeded);
        assert_eq!(routes(&plan), [0], "only always");
    }

    #[test]
    fn pending_tells_no_one_and_remembers_nothing() {
        let source = source(false);
        let v = verdict(StatusState::Pending, BuildResult::Started, false);
        assert!(!needs_history(&v));
        let plan = plan_of(&source, v, None, None);
        assert!(plan.routes.is_empty());
        assert_eq!(plan.last_result, None);
        assert_eq!(plan.badge, None);
        assert_eq!(plan.status.state, StatusState::Pending);
    }

    #[test]
    fn a_skip_posts_its_success_and_nothing_else() {
        let source = source(false);
        let v = verdict(StatusState::Success, BuildResult::Skipped, true);
        assert!(!needs_history(&v));
        let plan = plan_of(&source, v, None, None);
        assert!(plan.routes.is_empty(), "not even `always`");
        assert_eq!(plan.last_result, None);
        assert_eq!(plan.badge, None);
    }

    #[test]
    fn a_failed_build_of_a_private_repository_keeps_its_badge_private() {
        let source = source(true);
        let record = record(&source);
        let plan = plan_of(
            &source,
            verdict(StatusState::Failure, BuildResult::Failed, true),
            Some(&record),
            None,
        );
        assert_eq!(
            routes(&plan),
            [0, 1, 2],
            "the first build counts as a change"
        );
        let badge = plan.badge.expect("a badge");
        assert_eq!(badge.key, "private-badges/octo-org/widgets/main.svg");
        assert_eq!(badge.state, BadgeState::Failing);
    }

    #[test]
    fn a_pull_request_has_no_badge_and_an_unconfigured_repository_no_chat() {
        let mut source = source(false);
        source.pull_request = Some(PullRequestRef {
            number: 7,
            title: "Add a thing".into(),
            author: "octocat".into(),
            url: "https://github.com/octo-org/widgets/pull/7".into(),
            action: "opened".into(),
            base_branch: "main".into(),
            base_sha: "b".repeat(40).into(),
            head_branch: "feature".into(),
            head_repository: Some("octo-org/widgets".into()),
            draft: false,
            approved_by: None,
            label: None,
        });
        let record = record(&source);
        let v = verdict(StatusState::Failure, BuildResult::Failed, true);
        let pr = plan_of(&source, v.clone(), Some(&record), None);
        assert_eq!(pr.badge, None);
        assert!(pr.last_result.is_some());
        let unconfigured = plan(None, "gantry-build", "d1", &source, v, Some(&record), None);
        assert!(unconfigured.routes.is_empty());
        assert_eq!(unconfigured.status.context, "gantry/gantry-build");
    }
}
