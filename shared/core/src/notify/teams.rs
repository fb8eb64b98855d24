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
//! - TextBlock text and facts are markdown, a CommonMark subset (bold,
//!   italic, lists, links): <https://learn.microsoft.com/en-us/adaptive-cards/authoring-cards/text-features>.
//!   Text a person controls is escaped with CommonMark's backslash, so a
//!   pull request titled `[click me](https://evil.example)` shows as typed
//!   instead of as a link ([`adaptive_card_escape`],
//!   [`markdown_block_marker`]). Teams' desktop and web clients honour the
//!   backslash; the mobile ones did not until fixed
//!   (microsoft/AdaptiveCards#5590, microsoft/Teams-AdaptiveCards-Mobile#58,
//!   #83), where it showed as a stray `\` rather than as markup.
//!
//! Teams only mentions someone through an `msteams.entities` mention, which
//! we never send, so user text cannot ping.

use serde_json::{Value, json};

use super::text::{adaptive_card_escape, fit_escaped, link_url, markdown_block_marker, one_line};
use super::{BuildResult, Message};

/// Each string is cut well below what would let the payload near 28 KB,
/// escapes included.
const SHORT: usize = 200;
const LONG: usize = 500;
const URL_MAX: usize = 2048;

/// The first line of `s` as literal text in Adaptive Cards markdown, cut
/// to `max` units.
fn esc(s: &str, max: usize) -> String {
    let line = one_line(s);
    let mut marker = markdown_block_marker(&line);
    let mut at = 0;
    fit_escaped(&line, max, |c| {
        let here = at;
        at += 1;
        match marker {
            Some((i, escaped)) if i == here => {
                marker = None;
                Some(escaped)
            }
            _ => adaptive_card_escape(c),
        }
    })
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
    let mut facts = vec![json!({"title": "Repository", "value": esc(&m.repository, SHORT)})];
    if let Some(pr) = &m.pull_request {
        facts.push(json!({"title": "Pull request", "value": format!("#{} {} (by {})", pr.number, esc(&pr.title, LONG), esc(&pr.author, SHORT))}));
    }
    if let Some(branch) = &m.branch {
        facts.push(json!({"title": "Branch", "value": esc(branch, SHORT)}));
    }
    if let Some(tag) = &m.tag {
        facts.push(json!({"title": "Tag", "value": esc(tag, SHORT)}));
    }
    facts.push(json!({"title": "Commit", "value": esc(m.short_sha(), 7)}));
    if let Some(author) = &m.author {
        facts.push(json!({"title": "Author", "value": esc(author, SHORT)}));
    }
    if let Some(duration) = m.duration() {
        facts.push(json!({"title": "Duration", "value": duration}));
    }
    if let Some(phase) = &m.failed_phase {
        facts.push(json!({"title": "Failed phase", "value": esc(phase, SHORT)}));
    }

    let mut body = vec![
        json!({"type": "Container", "style": container, "bleed": true, "items": [
            {"type": "TextBlock", "text": esc(&m.headline(), SHORT), "size": "Medium", "weight": "Bolder", "wrap": true},
        ]}),
        json!({"type": "TextBlock", "text": esc(&m.summary, LONG), "weight": "Bolder", "color": colour, "wrap": true}),
    ];
    if let Some(title) = m.commit_title() {
        body.push(
            json!({"type": "TextBlock", "text": esc(&title, LONG), "isSubtle": true, "wrap": true}),
        );
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
    body.push(json!({"type": "TextBlock", "text": format!("Gantry · {} · {}", esc(&m.project, SHORT), esc(&m.correlation_id, SHORT)), "size": "Small", "isSubtle": true, "wrap": true}));

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

    /// The texts of the card that Teams reads as markdown: every
    /// TextBlock (also inside containers) and every fact.
    fn markdown_texts(v: &Value) -> Vec<String> {
        fn walk(item: &Value, out: &mut Vec<String>) {
            match item["type"].as_str() {
                Some("TextBlock") => out.extend(item["text"].as_str().map(str::to_owned)),
                Some("Container") => {
                    for i in item["items"].as_array().into_iter().flatten() {
                        walk(i, out);
                    }
                }
                Some("FactSet") => {
                    for f in item["facts"].as_array().into_iter().flatten() {
                        out.extend(f["title"].as_str().map(str::to_owned));
                        out.extend(f["value"].as_str().map(str::to_owned));
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for item in v["attachments"][0]["content"]["body"]
            .as_array()
            .into_iter()
            .flatten()
        {
            walk(item, &mut out);
        }
        out
    }

    /// No markdown in `text` but what a backslash turns back into plain
    /// characters: each emphasis, link, code, strikethrough or `{{DATE()}}`
    /// character has an odd run of backslashes before it, and a backslash
    /// escapes only ASCII punctuation (elsewhere it is shown as itself).
    fn assert_no_markup(text: &str) {
        let mut run = 0;
        for c in text.chars() {
            if c == '\\' {
                run += 1;
                continue;
            }
            if "*_[]`~{".contains(c) {
                assert!(run % 2 == 1, "unescaped {c:?} in {text:?}");
            } else if run % 2 == 1 {
                assert!(c.is_ascii_punctuation(), "stray backslash in {text:?}");
            }
            run = 0;
        }
        assert!(run % 2 == 0, "trailing backslash in {text:?}");
    }

    pub(crate) fn check_limits(v: &Value) {
        let bytes = serde_json::to_vec(v).unwrap().len();
        assert!(bytes < PAYLOAD_MAX_BYTES, "{bytes} bytes");
        assert_eq!(v["attachments"].as_array().unwrap().len(), 1);
        for text in markdown_texts(v) {
            assert_no_markup(&text);
        }
    }

    /// Adaptive Cards render a markdown subset in TextBlocks and facts: a
    /// pull request title must not become a link, nor a commit message a
    /// list or bold text.
    #[test]
    fn notify_teams_escapes_markdown_in_text_a_person_controls() {
        let mut m = failed_pr();
        if let Some(pr) = m.pull_request.as_mut() {
            pr.title = "[click me](https://evil.example) **urgent**".into();
            pr.author = "_mona_".into();
        }
        m.commit_message =
            Some("- `rm -rf` ~~safe~~ {{DATE(2017-02-14T06:00:00Z, SHORT)}} \\o/\nbody".into());
        m.branch = Some("feature/__init__".into());
        m.author = Some("*mona*".into());
        let v = render(Provider::Teams, &m);
        let body = &v["attachments"][0]["content"]["body"];
        assert_eq!(
            body[2]["text"],
            "\\- \\`rm -rf\\` \\~\\~safe\\~\\~ \\{\\{DATE\\(2017-02-14T06:00:00Z, SHORT\\)}} \\\\o/"
        );
        let fact = |title: &str| {
            body[3]["facts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["title"] == title)
                .and_then(|f| f["value"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            fact("Pull request"),
            "#7 \\[click me\\]\\(https://evil.example\\) \\*\\*urgent\\*\\* (by \\_mona\\_)"
        );
        assert_eq!(fact("Branch"), "feature/\\_\\_init\\_\\_");
        assert_eq!(fact("Author"), "\\*mona\\*");
        check_limits(&v);
    }

    /// A line that starts like a list item, a heading or a quote is one in
    /// markdown: its marker is escaped, and only there.
    #[test]
    fn notify_teams_escapes_a_block_marker_at_the_start_of_a_text() {
        let cases = [
            ("- item", "\\- item"),
            ("+ item", "\\+ item"),
            ("1. step - two", "1\\. step - two"),
            ("12) step", "12\\) step"),
            ("# Heading", "\\# Heading"),
            ("> quote", "\\> quote"),
            ("---", "\\---"),
            ("v1.2 - fix #3", "v1.2 - fix #3"),
        ];
        for (title, want) in cases {
            let mut m = failed_pr();
            m.commit_message = Some(title.into());
            let v = render(Provider::Teams, &m);
            assert_eq!(
                v["attachments"][0]["content"]["body"][2]["text"], want,
                "{title}"
            );
        }
    }

    #[test]
    fn notify_teams_stays_under_28_kb_on_enormous_messages() {
        for unit in ["a", "\"", "😀", "中", "\u{7}", "*", "[", "\\"] {
            check_limits(&render(
                Provider::Teams,
                &enormous(unit, 20_000, BuildResult::Errored),
            ));
        }
    }
}
