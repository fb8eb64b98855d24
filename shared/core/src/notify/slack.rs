//! Slack incoming webhook, Block Kit.
//!
//! - Incoming webhooks: <https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks>
//!   (POST JSON, answers `200 ok`; `400 invalid_payload`, `403`, `404`, `410` when refused).
//! - `text` is the fallback for notifications and screen readers when
//!   `blocks` are present: <https://docs.slack.dev/reference/methods/chat.postMessage#text_usage>
//! - Blocks and their limits: header (`plain_text`, 150 chars),
//!   section (`text` 3000 chars, at most 10 `fields` of 2000 chars each),
//!   context (10 elements), actions (25 elements; button text 75 chars,
//!   url 3000 chars), 50 blocks a message:
//!   <https://docs.slack.dev/reference/block-kit/blocks>,
//!   <https://docs.slack.dev/reference/block-kit/block-elements/button-element>
//! - Escaping: in `mrkdwn`, `&`, `<`, `>` must be sent as `&amp;`, `&lt;`,
//!   `&gt;`; the rest is literal:
//!   <https://docs.slack.dev/messaging/formatting-message-text#escaping>.
//!   `plain_text` is not parsed, so it is not escaped.
//!
//! Block Kit has no colour bar (only legacy attachments do): the headline's
//! emoji carries the result.

use serde_json::{Value, json};

use super::Message;
use super::limits::slack::*;
use super::text::{fit, fit_escaped, link_url, one_line, slack_escape};

/// Short values: names, phases, the summary.
const SHORT: usize = 300;
/// A URL inside a field's mrkdwn link; longer ones are left out.
const LINK_URL_MAX: usize = 1000;

fn esc(s: &str, max: usize) -> String {
    fit_escaped(&one_line(s), max, slack_escape)
}

/// `<url|label>`, or just the label when the URL cannot be linked. Slack
/// reads `|` and `>` as the link's syntax, so the URL must not hold them.
fn link(url: Option<&str>, label: String) -> String {
    match link_url(url, LINK_URL_MAX).filter(|u| !u.contains('|')) {
        Some(url) => format!("<{url}|{label}>"),
        None => label,
    }
}

fn field(name: &str, value: String) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{name}*\n{value}")})
}

pub(super) fn render(m: &Message) -> Value {
    let headline = m.headline();

    let mut fields = vec![field(
        "Repository",
        link(Some(&m.repository_url), esc(&m.repository, SHORT)),
    )];
    if let Some(pr) = &m.pull_request {
        let label = format!("#{} {}", pr.number, esc(&pr.title, 600));
        let by = format!(" by {}", esc(&pr.author, SHORT));
        fields.push(field("Pull request", link(Some(&pr.url), label) + &by));
    }
    if let Some(branch) = &m.branch {
        fields.push(field("Branch", esc(branch, SHORT)));
    }
    if let Some(tag) = &m.tag {
        fields.push(field("Tag", esc(tag, SHORT)));
    }
    fields.push(field(
        "Commit",
        link(
            m.commit_url.as_deref(),
            format!("`{}`", esc(m.short_sha(), 7)),
        ),
    ));
    if let Some(author) = &m.author {
        fields.push(field("Author", esc(author, SHORT)));
    }
    if let Some(duration) = m.duration() {
        fields.push(field("Duration", duration));
    }
    if let Some(phase) = &m.failed_phase {
        fields.push(field("Failed phase", esc(phase, SHORT)));
    }

    let mut text = format!("*{}*", esc(&m.summary, 500));
    if let Some(title) = m.commit_title() {
        text.push_str("\n>");
        text.push_str(&esc(&title, 2000));
    }

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": fit(&one_line(&headline), HEADER_MAX), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}),
        json!({"type": "section", "fields": fields}),
    ];
    let buttons: Vec<Value> = [
        ("View build", "gantry_build", m.build_url.as_deref()),
        ("Logs", "gantry_logs", m.logs_url.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, id, url)| {
        let url = link_url(url, BUTTON_URL_MAX)?;
        Some(json!({"type": "button", "text": {"type": "plain_text", "text": label}, "url": url, "action_id": id}))
    })
    .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    blocks.push(json!({"type": "context", "elements": [{
        "type": "mrkdwn",
        "text": format!("Gantry · {} · {}", esc(&m.project, SHORT), esc(&m.correlation_id, SHORT)),
    }]}));

    json!({
        "text": fit_escaped(&format!("{} — {}", one_line(&headline), one_line(&m.summary)), FALLBACK_MAX, slack_escape),
        "blocks": blocks,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #[allow(unused_imports)]
    use super::super::limits::slack::*;
    use super::super::tests::{enormous, failed_pr};
    use super::super::text::units;
    use super::super::{BuildResult, Provider, render};
    use super::*;

    #[test]
    fn notify_slack_renders_a_failed_pull_request() {
        let got = render(Provider::Slack, &failed_pr());
        let want = json!({
            "text": "❌ octo-org/widgets #7 failed — BUILD failed after 3m 12s",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "❌ octo-org/widgets #7 failed", "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*BUILD failed after 3m 12s*\n>Cache the cargo registry &amp; skip &lt;target&gt;"}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Repository*\n<https://github.com/octo-org/widgets|octo-org/widgets>"},
                    {"type": "mrkdwn", "text": "*Pull request*\n<https://github.com/octo-org/widgets/pull/7|#7 Faster builds: cache &lt;cargo&gt; &amp; more> by mona"},
                    {"type": "mrkdwn", "text": "*Branch*\nfeature/faster-builds"},
                    {"type": "mrkdwn", "text": "*Commit*\n<https://github.com/octo-org/widgets/commit/1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d|`1a2b3c4`>"},
                    {"type": "mrkdwn", "text": "*Author*\nmona"},
                    {"type": "mrkdwn", "text": "*Duration*\n3m 12s"},
                    {"type": "mrkdwn", "text": "*Failed phase*\nBUILD"},
                ]},
                {"type": "actions", "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "View build"}, "url": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/widgets/build/widgets%3A0f1e2d3c/?region=eu-west-1", "action_id": "gantry_build"},
                    {"type": "button", "text": {"type": "plain_text", "text": "Logs"}, "url": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fwidgets/log-events/0f1e2d3c", "action_id": "gantry_logs"},
                ]},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "Gantry · widgets · 72d3162e-cc78-11e3-81ab-4c9367dc0958"}]},
            ],
        });
        assert_eq!(got, want);
    }

    #[test]
    fn notify_slack_escapes_mentions_in_user_text() {
        let mut m = failed_pr();
        m.commit_message = Some("<!channel> look & <@U123>".into());
        m.branch = Some("<!everyone>".into());
        let body = render(Provider::Slack, &m).to_string();
        assert!(!body.contains("<!channel>") && !body.contains("<!everyone>"));
        assert!(!body.contains("<@U123>"));
        assert!(body.contains("&lt;!channel&gt; look &amp; &lt;@U123&gt;"));
    }

    #[test]
    fn notify_slack_leaves_out_what_it_cannot_link() {
        let mut m = failed_pr();
        m.build_url = Some("javascript:alert(1)".into());
        m.logs_url = None;
        m.commit_url = Some("https://x.io/a|b".into());
        let v = render(Provider::Slack, &m);
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.iter().all(|b| b["type"] != "actions"));
        assert!(v.to_string().contains("*Commit*\\n`1a2b3c4`\""));
    }

    /// Every limit Slack documents, on one rendered payload.
    pub(crate) fn check_limits(v: &Value) {
        let fallback = v["text"].as_str().unwrap();
        assert!(units(fallback) <= FALLBACK_MAX);
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= BLOCKS_MAX);
        for b in blocks {
            match b["type"].as_str().unwrap() {
                "header" => {
                    assert_eq!(b["text"]["type"], "plain_text");
                    assert!(units(b["text"]["text"].as_str().unwrap()) <= HEADER_MAX);
                }
                "section" => {
                    if let Some(t) = b["text"]["text"].as_str() {
                        assert!(units(t) <= SECTION_TEXT_MAX, "section {}", units(t));
                    }
                    if let Some(fields) = b["fields"].as_array() {
                        assert!(fields.len() <= FIELDS_MAX);
                        for f in fields {
                            let t = f["text"].as_str().unwrap();
                            assert!(units(t) <= FIELD_TEXT_MAX, "field {}", units(t));
                        }
                    }
                }
                "actions" => {
                    let elements = b["elements"].as_array().unwrap();
                    assert!(!elements.is_empty() && elements.len() <= 25);
                    for e in elements {
                        assert!(units(e["text"]["text"].as_str().unwrap()) <= BUTTON_TEXT_MAX);
                        assert!(e["url"].as_str().unwrap().len() <= BUTTON_URL_MAX);
                    }
                }
                "context" => {
                    let elements = b["elements"].as_array().unwrap();
                    assert!(elements.len() <= 10);
                    for e in elements {
                        assert!(units(e["text"].as_str().unwrap()) <= SECTION_TEXT_MAX);
                    }
                }
                other => panic!("unexpected block {other}"),
            }
        }
    }

    #[test]
    fn notify_slack_respects_its_limits_on_enormous_messages() {
        for unit in ["a", "&", "😀", "<"] {
            let m = enormous(unit, 10_000, BuildResult::Failed);
            check_limits(&render(Provider::Slack, &m));
        }
    }
}
