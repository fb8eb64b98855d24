//! Discord webhook: one embed.
//!
//! - Execute Webhook: <https://discord.com/developers/docs/resources/webhook#execute-webhook>
//!   (POST JSON; `204 No Content` unless `?wait=true`).
//! - Embed object and its limits (title 256, description 4096, 25 fields,
//!   field name 256 / value 1024, footer 2048, and 6000 characters across
//!   title, description, field names and values, footer and author):
//!   <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
//! - Allowed mentions, `"parse": []` so nothing in the text can ping
//!   `@everyone`, a role or a user:
//!   <https://discord.com/developers/docs/resources/message#allowed-mentions-object>
//! - Markdown in descriptions and field values, escaped with a backslash:
//!   <https://support.discord.com/hc/en-us/articles/210298617-Markdown-Text-101-Chat-Formatting-Bold-Italic-Underline>
//!
//! The embed's title links to the build; the colour is the result's.

use serde_json::{Value, json};

use super::Message;
use super::limits::discord::*;
use super::text::{discord_escape, fit, fit_escaped, link_url, one_line, units};

/// Our own budget, so that the embed's total stays under 6000 whatever
/// the message: 256 + 800 + 150 + names + 5 × 200 + 4 × 700 < 6000.
const DESCRIPTION: usize = 800;
const FOOTER: usize = 150;
const SHORT: usize = 200;
const LINKED: usize = 700;

fn esc(s: &str, max: usize) -> String {
    fit_escaped(&one_line(s), max, discord_escape)
}

/// `[label](url)` within `max` units, else the label alone (cut to `max`).
/// A URL is never cut, and `(`/`)` in it would end the link early.
fn linked(label: &str, url: Option<&str>, max: usize) -> String {
    if let Some(url) = link_url(url, max).filter(|u| !u.contains(['(', ')'])) {
        let room = max.saturating_sub(units(url) + 4);
        let label = esc(label, room);
        if !label.is_empty() && label != "…" {
            return format!("[{label}]({url})");
        }
    }
    esc(label, max)
}

/// Discord refuses an empty field value.
fn field(name: &str, value: String, inline: bool) -> Value {
    let value = if value.trim().is_empty() {
        "—".to_owned()
    } else {
        value
    };
    json!({"name": name, "value": value, "inline": inline})
}

pub(super) fn render(m: &Message) -> Value {
    let mut fields = vec![field(
        "Repository",
        linked(&m.repository, Some(&m.repository_url), LINKED),
        true,
    )];
    if let Some(pr) = &m.pull_request {
        let label = format!("#{} {}", pr.number, one_line(&pr.title));
        let value = linked(&label, Some(&pr.url), LINKED - SHORT - 4);
        fields.push(field(
            "Pull request",
            format!("{value} by {}", esc(&pr.author, SHORT)),
            false,
        ));
    }
    if let Some(branch) = &m.branch {
        fields.push(field("Branch", esc(branch, SHORT), true));
    }
    if let Some(tag) = &m.tag {
        fields.push(field("Tag", esc(tag, SHORT), true));
    }
    let sha = m.short_sha();
    fields.push(field(
        "Commit",
        linked(sha, m.commit_url.as_deref(), LINKED),
        true,
    ));
    if let Some(author) = &m.author {
        fields.push(field("Author", esc(author, SHORT), true));
    }
    if let Some(duration) = m.duration() {
        fields.push(field("Duration", duration, true));
    }
    if let Some(phase) = &m.failed_phase {
        fields.push(field("Failed phase", esc(phase, SHORT), true));
    }
    let links: Vec<String> = [
        ("Build", m.build_url.as_deref()),
        ("Logs", m.logs_url.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, url)| {
        let url = link_url(url, LINKED / 2 - 10).filter(|u| !u.contains(['(', ')']))?;
        Some(format!("[{label}]({url})"))
    })
    .collect();
    if !links.is_empty() {
        fields.push(field("Links", links.join(" · "), false));
    }

    let mut description = format!("**{}**", esc(&m.summary, SHORT));
    if let Some(title) = m.commit_title() {
        description.push('\n');
        description.push_str(&esc(&title, DESCRIPTION - SHORT - 5));
    }

    let mut embed = json!({
        "title": fit(&one_line(&m.headline()), TITLE_MAX),
        "description": description,
        "color": m.result.colour_rgb(),
        "fields": fields,
        "footer": {"text": fit(&format!("Gantry · {} · {}", one_line(&m.project), one_line(&m.correlation_id)), FOOTER)},
    });
    if let Some(url) = link_url(m.build_url.as_deref(), 2048) {
        embed["url"] = json!(url);
    }
    json!({
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #[allow(unused_imports)]
    use super::super::limits::discord::*;
    use super::super::tests::{enormous, failed_pr};
    use super::super::{BuildResult, Provider, render};
    use super::*;

    #[test]
    fn notify_discord_renders_a_failed_pull_request() {
        let got = render(Provider::Discord, &failed_pr());
        let want = json!({
            "embeds": [{
                "title": "❌ octo-org/widgets #7 failed",
                "url": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/widgets/build/widgets%3A0f1e2d3c/?region=eu-west-1",
                "description": "**BUILD failed after 3m 12s**\nCache the cargo registry & skip \\<target\\>",
                "color": 0xCF222E,
                "fields": [
                    {"name": "Repository", "value": "[octo-org/widgets](https://github.com/octo-org/widgets)", "inline": true},
                    {"name": "Pull request", "value": "[\\#7 Faster builds: cache \\<cargo\\> & more](https://github.com/octo-org/widgets/pull/7) by mona", "inline": false},
                    {"name": "Branch", "value": "feature/faster-builds", "inline": true},
                    {"name": "Commit", "value": "[1a2b3c4](https://github.com/octo-org/widgets/commit/1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d)", "inline": true},
                    {"name": "Author", "value": "mona", "inline": true},
                    {"name": "Duration", "value": "3m 12s", "inline": true},
                    {"name": "Failed phase", "value": "BUILD", "inline": true},
                    {"name": "Links", "value": "[Build](https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/widgets/build/widgets%3A0f1e2d3c/?region=eu-west-1) · [Logs](https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fwidgets/log-events/0f1e2d3c)", "inline": false},
                ],
                "footer": {"text": "Gantry · widgets · 72d3162e-cc78-11e3-81ab-4c9367dc0958"},
            }],
            "allowed_mentions": {"parse": []},
        });
        assert_eq!(got, want);
    }

    #[test]
    fn notify_discord_never_pings() {
        let mut m = failed_pr();
        m.commit_message = Some("@everyone look <@123>".into());
        let v = render(Provider::Discord, &m);
        assert_eq!(v["allowed_mentions"], json!({"parse": []}));
        let d = v["embeds"][0]["description"].as_str().unwrap();
        assert!(!d.contains("@everyone") && !d.contains("<@123>"), "{d}");
    }

    pub(crate) fn check_limits(v: &Value) {
        assert_eq!(v["allowed_mentions"], json!({"parse": []}));
        let embeds = v["embeds"].as_array().unwrap();
        assert_eq!(embeds.len(), 1);
        let e = &embeds[0];
        let len = |v: &Value| units(v.as_str().unwrap_or(""));
        let mut total = len(&e["title"]) + len(&e["description"]) + len(&e["footer"]["text"]);
        assert!(len(&e["title"]) <= TITLE_MAX);
        assert!(len(&e["description"]) <= DESCRIPTION_MAX);
        assert!(len(&e["footer"]["text"]) <= FOOTER_MAX);
        assert!(e["color"].is_u64());
        let fields = e["fields"].as_array().unwrap();
        assert!(fields.len() <= FIELDS_MAX);
        for f in fields {
            assert!((1..=FIELD_NAME_MAX).contains(&len(&f["name"])));
            assert!(
                (1..=FIELD_VALUE_MAX).contains(&len(&f["value"])),
                "{}",
                len(&f["value"])
            );
            total += len(&f["name"]) + len(&f["value"]);
        }
        assert!(total <= EMBED_TOTAL_MAX, "embed total {total}");
    }

    #[test]
    fn notify_discord_respects_its_limits_on_enormous_messages() {
        for unit in ["a", "*", "😀", "@", "("] {
            check_limits(&render(
                Provider::Discord,
                &enormous(unit, 10_000, BuildResult::Failed),
            ));
        }
        // Short URLs are kept as links however long the label.
        check_limits(&render(
            Provider::Discord,
            &enormous("x", 300, BuildResult::Fixed),
        ));
    }
}
