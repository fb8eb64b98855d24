//! Google Chat incoming webhook, a text plus a cards v2 card.
//!
//! - Incoming webhooks: <https://developers.google.com/workspace/chat/quickstart/webhooks>
//!   (POST JSON to the space's webhook URL, which carries `key` and `token`).
//! - Messages and cards v2 (`cardsV2[].cardId`, `card.header.title`/`subtitle`,
//!   `sections[].widgets[]`, `decoratedText` with `topLabel`/`text`/`wrapText`,
//!   `buttonList.buttons[].onClick.openLink.url`):
//!   <https://developers.google.com/workspace/chat/api/reference/rest/v1/cards>
//! - Limits: a whole message, text and cards, is at most 32,000 bytes:
//!   <https://developers.google.com/workspace/chat/create-messages>; text
//!   messages up to 4,096 characters.
//! - Formatting: card text is a subset of HTML (`<b>`, `<font color>`,
//!   `<a href>`), so user text is HTML-escaped there; the plain `text`
//!   uses Chat's own syntax, where `<users/all>` mentions everyone and no
//!   escape exists, so angle brackets in user text become ‹ ›:
//!   <https://developers.google.com/workspace/chat/format-messages>
//!
//! Cards have no colour bar: the result's colour tints its label.

use serde_json::{Value, json};

use super::Message;
use super::limits::google_chat::*;
use super::text::{fit_escaped, google_text_escape, html_escape, link_url, one_line};

const HEADER: usize = 200;
const SHORT: usize = 300;
const LONG: usize = 1000;
const URL_MAX: usize = 2048;

fn html(s: &str, max: usize) -> String {
    fit_escaped(&one_line(s), max, html_escape)
}

fn labelled(label: &str, text: String) -> Value {
    json!({"decoratedText": {"topLabel": label, "text": text, "wrapText": true}})
}

/// `<a href="url">label</a>`, or the label when the URL cannot be linked.
fn anchor(url: Option<&str>, label: String) -> String {
    match link_url(url, URL_MAX).map(|u| u.replace('&', "&amp;")) {
        Some(href) if href.len() <= URL_MAX => format!("<a href=\"{href}\">{label}</a>"),
        _ => label,
    }
}

pub(super) fn render(m: &Message) -> Value {
    let mut widgets = vec![labelled(
        "Result",
        format!(
            "<font color=\"{}\"><b>{}</b></font>",
            m.result.colour(),
            html(&m.summary, SHORT)
        ),
    )];
    if let Some(title) = m.commit_title() {
        widgets.push(labelled(
            "Commit message",
            fit_escaped(&title, LONG, html_escape),
        ));
    }
    widgets.push(labelled(
        "Repository",
        anchor(Some(&m.repository_url), html(&m.repository, SHORT)),
    ));
    if let Some(pr) = &m.pull_request {
        let label = format!("#{} {}", pr.number, html(&pr.title, LONG));
        widgets.push(labelled(
            "Pull request",
            format!(
                "{} by {}",
                anchor(Some(&pr.url), label),
                html(&pr.author, SHORT)
            ),
        ));
    }
    if let Some(branch) = &m.branch {
        widgets.push(labelled("Branch", html(branch, SHORT)));
    }
    if let Some(tag) = &m.tag {
        widgets.push(labelled("Tag", html(tag, SHORT)));
    }
    widgets.push(labelled(
        "Commit",
        anchor(m.commit_url.as_deref(), html(m.short_sha(), 7)),
    ));
    if let Some(author) = &m.author {
        widgets.push(labelled("Author", html(author, SHORT)));
    }
    if let Some(duration) = m.duration() {
        widgets.push(labelled("Duration", duration));
    }
    if let Some(phase) = &m.failed_phase {
        widgets.push(labelled("Failed phase", html(phase, SHORT)));
    }
    let buttons: Vec<Value> = [
        ("View build", m.build_url.as_deref()),
        ("Logs", m.logs_url.as_deref()),
    ]
    .into_iter()
    .filter_map(|(text, url)| {
        Some(json!({"text": text, "onClick": {"openLink": {"url": link_url(url, URL_MAX)?}}}))
    })
    .collect();
    if !buttons.is_empty() {
        widgets.push(json!({"buttonList": {"buttons": buttons}}));
    }

    json!({
        "text": fit_escaped(&one_line(&m.headline()), TEXT_MAX.min(HEADER), google_text_escape),
        "cardsV2": [{
            "cardId": "gantry-build",
            "card": {
                "header": {
                    "title": fit_escaped(&one_line(&m.headline()), HEADER, google_text_escape),
                    "subtitle": fit_escaped(&format!("Gantry · {} · {}", one_line(&m.project), one_line(&m.correlation_id)), HEADER, google_text_escape),
                },
                "sections": [{"widgets": widgets}],
            },
        }],
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #[allow(unused_imports)]
    use super::super::limits::google_chat::*;
    use super::super::tests::{enormous, failed_pr};
    use super::super::text::units;
    use super::super::{BuildResult, Provider, render};
    use super::*;

    #[test]
    fn notify_google_chat_renders_a_failed_pull_request() {
        let got = render(Provider::GoogleChat, &failed_pr());
        let want = json!({
            "text": "❌ octo-org/widgets #7 failed",
            "cardsV2": [{
                "cardId": "gantry-build",
                "card": {
                    "header": {
                        "title": "❌ octo-org/widgets #7 failed",
                        "subtitle": "Gantry · widgets · 72d3162e-cc78-11e3-81ab-4c9367dc0958",
                    },
                    "sections": [{"widgets": [
                        {"decoratedText": {"topLabel": "Result", "text": "<font color=\"#CF222E\"><b>BUILD failed after 3m 12s</b></font>", "wrapText": true}},
                        {"decoratedText": {"topLabel": "Commit message", "text": "Cache the cargo registry &amp; skip &lt;target&gt;", "wrapText": true}},
                        {"decoratedText": {"topLabel": "Repository", "text": "<a href=\"https://github.com/octo-org/widgets\">octo-org/widgets</a>", "wrapText": true}},
                        {"decoratedText": {"topLabel": "Pull request", "text": "<a href=\"https://github.com/octo-org/widgets/pull/7\">#7 Faster builds: cache &lt;cargo&gt; &amp; more</a> by mona", "wrapText": true}},
                        {"decoratedText": {"topLabel": "Branch", "text": "feature/faster-builds", "wrapText": true}},
                        {"decoratedText": {"topLabel": "Commit", "text": "<a href=\"https://github.com/octo-org/widgets/commit/1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d\">1a2b3c4</a>", "wrapText": true}},
                        {"decoratedText": {"topLabel": "Author", "text": "mona", "wrapText": true}},
                        {"decoratedText": {"topLabel": "Duration", "text": "3m 12s", "wrapText": true}},
                        {"decoratedText": {"topLabel": "Failed phase", "text": "BUILD", "wrapText": true}},
                        {"buttonList": {"buttons": [
                            {"text": "View build", "onClick": {"openLink": {"url": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/widgets/build/widgets%3A0f1e2d3c/?region=eu-west-1"}}},
                            {"text": "Logs", "onClick": {"openLink": {"url": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fwidgets/log-events/0f1e2d3c"}}},
                        ]}},
                    ]}],
                },
            }],
        });
        assert_eq!(got, want);
    }

    #[test]
    fn notify_google_chat_cannot_mention_everyone() {
        let mut m = failed_pr();
        m.pull_request = None;
        m.branch = Some("<users/all>".into());
        let v = render(Provider::GoogleChat, &m);
        let body = v.to_string();
        assert!(!body.contains("<users/all>"), "{body}");
        assert_eq!(v["text"], "❌ octo-org/widgets ‹users/all› failed");
    }

    pub(crate) fn check_limits(v: &Value) {
        let bytes = serde_json::to_vec(v).unwrap().len();
        assert!(bytes <= MESSAGE_MAX_BYTES, "{bytes} bytes");
        assert!(units(v["text"].as_str().unwrap()) <= TEXT_MAX);
        assert_eq!(v["cardsV2"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn notify_google_chat_stays_under_32_000_bytes_on_enormous_messages() {
        for unit in ["a", "<", "😀", "中", "\""] {
            check_limits(&render(
                Provider::GoogleChat,
                &enormous(unit, 20_000, BuildResult::Rejected),
            ));
        }
    }
}
