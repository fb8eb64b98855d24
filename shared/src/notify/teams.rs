//! Microsoft Teams through a Workflows (Power Automate) webhook, "Post to a
//! channel when a webhook request is received": a `message` activity with
//! one Adaptive Card attachment.
//!
//! - The envelope and the card: <https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook>,
//!   <https://learn.microsoft.com/en-us/connectors/teams/?tabs=text1#microsoft-teams-webhook>
//!   (Workflows accept Adaptive Cards only; the flow answers `202 Accepted`).
//! - Message size limit 28 KB: same page ("the message size limit is 28 KB").
//! - Adaptive Card 1.4 schema: <https://adaptivecards.io/explorer/> —
//!   `Container` (`style` `good`/`attention`/`warning`/`default`, `bleed`),
//!   `TextBlock` (`wrap`, `size`, `weight`, `color`, `isSubtle`),
//!   `FactSet`, `Action.OpenUrl`.
//!
//! Teams only mentions someone through an `msteams.entities` mention, which
//! we never send, so user text cannot ping; it goes in as plain text.

use serde_json::{Value, json};

use super::text::{fit, link_url, one_line};
use super::{BuildResult, Message};

/// Each string is cut well below what would let the payload near 28 KB.
const SHORT: usize = 200;
const LONG: usize = 500;
const URL_MAX: usize = 2048;

fn plain(s: &str, max: usize) -> String {
    fit(&one_line(s), max)
}

/// The container style and text colour for a result.
fn style(result: BuildResult) -> (&'static str, &'static str) {
    match result {
        BuildResult::Succeeded | BuildResult::Fixed => ("good", "Good"),
        BuildResult::Failed | BuildResult::Errored | BuildResult::Rejected => {
            ("attention", "Attention")
        }
        BuildResult::Started | BuildResult::Queued => ("warning", "Warning"),
        BuildResult::Stopped | BuildResult::Superseded | BuildResult::Skipped => {
            ("emphasis", "Default")
        }
    }
}

pub(super) fn render(m: &Message) -> Value {
    let (container, colour) = style(m.result);
    let mut facts = vec![json!({"title": "Repository", "value": plain(&m.repository, SHORT)})];
    if let Some(pr) = &m.pull_request {
        facts.push(json!({"title": "Pull request", "value": format!("#{} {} (by {})", pr.number, plain(&pr.title, LONG), plain(&pr.author, SHORT))}));
    }
    if let Some(branch) = &m.branch {
        facts.push(json!({"title": "Branch", "value": plain(branch, SHORT)}));
    }
    if let Some(tag) = &m.tag {
        facts.push(json!({"title": "Tag", "value": plain(tag, SHORT)}));
    }
    facts.push(json!({"title": "Commit", "value": plain(m.short_sha(), 7)}));
    if let Some(author) = &m.author {
        facts.push(json!({"title": "Author", "value": plain(author, SHORT)}));
    }
    if let Some(duration) = m.duration() {
        facts.push(json!({"title": "Duration", "value": duration}));
    }
    if let Some(phase) = &m.failed_phase {
        facts.push(json!({"title": "Failed phase", "value": plain(phase, SHORT)}));
    }

    let mut body = vec![
        json!({"type": "Container", "style": container, "bleed": true, "items": [
            {"type": "TextBlock", "text": plain(&m.headline(), SHORT), "size": "Medium", "weight": "Bolder", "wrap": true},
        ]}),
        json!({"type": "TextBlock", "text": plain(&m.summary, LONG), "weight": "Bolder", "color": colour, "wrap": true}),
    ];
    if let Some(title) = m.commit_title() {
        body.push(
            json!({"type": "TextBlock", "text": fit(&title, LONG), "isSubtle": true, "wrap": true}),
        );
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
    body.push(json!({"type": "TextBlock", "text": format!("Gantry · {} · {}", plain(&m.project, SHORT), plain(&m.correlation_id, SHORT)), "size": "Small", "isSubtle": true, "wrap": true}));

    let actions: Vec<Value> = [
        ("View build", m.build_url.as_deref()),
        ("Logs", m.logs_url.as_deref()),
        (
            if m.pull_request.is_some() {
                "Pull request"
            } else {
                "Commit"
            },
            m.pull_request
                .as_ref()
                .map(|pr| pr.url.as_str())
                .or(m.commit_url.as_deref()),
        ),
    ]
    .into_iter()
    .filter_map(|(title, url)| {
        Some(json!({"type": "Action.OpenUrl", "title": title, "url": link_url(url, URL_MAX)?}))
    })
    .collect();

    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            },
        }],
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #[allow(unused_imports)]
    use super::super::limits::teams::*;
    use super::super::tests::{enormous, failed_pr};
    use super::super::{BuildResult, Provider, render};
    use super::*;

    #[test]
    fn notify_teams_renders_a_failed_pull_request() {
        let got = render(Provider::Teams, &failed_pr());
        let want = json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "Container", "style": "attention", "bleed": true, "items": [
                            {"type": "TextBlock", "text": "❌ octo-org/widgets #7 failed", "size": "Medium", "weight": "Bolder", "wrap": true},
                        ]},
                        {"type": "TextBlock", "text": "BUILD failed after 3m 12s", "weight": "Bolder", "color": "Attention", "wrap": true},
                        {"type": "TextBlock", "text": "Cache the cargo registry & skip <target>", "isSubtle": true, "wrap": true},
                        {"type": "FactSet", "facts": [
                            {"title": "Repository", "value": "octo-org/widgets"},
                            {"title": "Pull request", "value": "#7 Faster builds: cache <cargo> & more (by mona)"},
                            {"title": "Branch", "value": "feature/faster-builds"},
                            {"title": "Commit", "value": "1a2b3c4"},
                            {"title": "Author", "value": "mona"},
                            {"title": "Duration", "value": "3m 12s"},
                            {"title": "Failed phase", "value": "BUILD"},
                        ]},
                        {"type": "TextBlock", "text": "Gantry · widgets · 72d3162e-cc78-11e3-81ab-4c9367dc0958", "size": "Small", "isSubtle": true, "wrap": true},
                    ],
                    "actions": [
                        {"type": "Action.OpenUrl", "title": "View build", "url": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/widgets/build/widgets%3A0f1e2d3c/?region=eu-west-1"},
                        {"type": "Action.OpenUrl", "title": "Logs", "url": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fwidgets/log-events/0f1e2d3c"},
                        {"type": "Action.OpenUrl", "title": "Pull request", "url": "https://github.com/octo-org/widgets/pull/7"},
                    ],
                },
            }],
        });
        assert_eq!(got, want);
    }

    pub(crate) fn check_limits(v: &Value) {
        let bytes = serde_json::to_vec(v).unwrap().len();
        assert!(bytes < PAYLOAD_MAX_BYTES, "{bytes} bytes");
        assert_eq!(v["attachments"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn notify_teams_stays_under_28_kb_on_enormous_messages() {
        for unit in ["a", "\"", "😀", "中", "\u{7}"] {
            check_limits(&render(
                Provider::Teams,
                &enormous(unit, 20_000, BuildResult::Errored),
            ));
        }
    }
}
