//! Pictures of notifications, as SVG: how each chat client shows the
//! payload [`super::render`] makes, drawn from that payload itself so the
//! pictures follow the renderers. `cargo run -p gantry-shared --example
//! notification-pictures` writes them to `docs/notifications/`.

use super::{BuildResult, Message, PullRequestInfo};

/// The message `docs/notifications.md` shows: a failed pull-request build
/// whose texts need escaping.
pub fn example() -> Message {
    let sha = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
    Message {
        project: "widgets".into(),
        repository: "octo-org/widgets".into(),
        repository_url: "https://github.com/octo-org/widgets".into(),
        branch: Some("feature/faster-builds".into()),
        tag: None,
        pull_request: Some(PullRequestInfo {
            number: 7,
            title: "Faster builds: cache <cargo> & more".into(),
            author: "mona".into(),
            url: "https://github.com/octo-org/widgets/pull/7".into(),
        }),
        commit_sha: sha.into(),
        commit_message: Some(
            "Cache the cargo registry & skip <target>\n\nThe registry is 400 MB; @everyone's builds download it.".into(),
        ),
        commit_url: Some(format!("https://github.com/octo-org/widgets/commit/{sha}")),
        author: Some("mona".into()),
        result: BuildResult::Failed,
        summary: "BUILD failed after 3m 12s".into(),
        duration_seconds: Some(192),
        failed_phase: Some("BUILD".into()),
        build_url: Some("https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/widgets/build/widgets%3A0f1e2d3c/?region=eu-west-1".into()),
        logs_url: Some("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fwidgets/log-events/0f1e2d3c".into()),
        correlation_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
    }
}
