//! Pictures of notifications, as SVG: how each chat client shows the
//! payload [`super::render`] makes, drawn from that payload itself so the
//! pictures follow the renderers. `cargo run -p gantry-core --example
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

use serde_json::Value;

use super::{Provider, render};

const WIDTH: u32 = 640;
const LINK: &str = "#1264A3";

/// A picture of `message` as `provider`'s client shows it, as SVG.
pub fn svg(provider: Provider, message: &Message) -> String {
    let payload = render(provider, message);
    let mut c = Canvas::default();
    match provider {
        Provider::Slack => slack(&mut c, &payload),
        Provider::Teams => teams(&mut c, &payload),
        Provider::Discord => discord(&mut c, &payload),
        Provider::GoogleChat => google_chat(&mut c, &payload),
        Provider::Generic => generic(&mut c, &payload),
    }
    c.finish(provider)
}

/// Shapes and text, top to bottom.
#[derive(Default)]
struct Canvas {
    body: String,
    y: u32,
    background: &'static str,
}

impl Canvas {
    #[allow(clippy::too_many_arguments)]
    fn rect(&mut self, x: u32, y: u32, w: u32, h: u32, rx: u32, fill: &str, stroke: Option<&str>) {
        let stroke = stroke
            .map(|s| format!(" stroke=\"{s}\""))
            .unwrap_or_default();
        self.body.push_str(&format!(
            "  <rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"{rx}\" fill=\"{fill}\"{stroke}/>\n"
        ));
    }

    /// One line of text, cut to `max_chars`.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        x: u32,
        y: u32,
        size: u32,
        bold: bool,
        fill: &str,
        s: &str,
        max_chars: usize,
    ) {
        let weight = if bold { " font-weight=\"bold\"" } else { "" };
        self.body.push_str(&format!(
            "  <text x=\"{x}\" y=\"{y}\" font-size=\"{size}\"{weight} fill=\"{fill}\">{}</text>\n",
            xml(&super::text::fit(s, max_chars))
        ));
    }

    fn avatar(&mut self, fill: &str, round: bool) {
        let rx = if round { 18 } else { 6 };
        self.rect(16, 16, 36, 36, rx, fill, None);
        self.text(27, 40, 18, true, "#FFFFFF", "G", 1);
    }

    fn finish(self, provider: Provider) -> String {
        let height = self.y + 16;
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"Helvetica, Arial, sans-serif\">\n  <title>A Gantry build notification as {} shows it</title>\n  <rect width=\"100%\" height=\"100%\" fill=\"{}\"/>\n{}</svg>\n",
            provider_name(provider),
            self.background,
            self.body
        )
    }
}

fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Slack => "Slack",
        Provider::Teams => "Microsoft Teams",
        Provider::Discord => "Discord",
        Provider::GoogleChat => "Google Chat",
        Provider::Generic => "a generic receiver",
    }
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Slack mrkdwn as shown: links by their label, entities decoded, `*`
/// bold markers and `` ` `` code markers dropped. True when it held a link.
fn slack_shown(s: &str) -> (String, bool) {
    let mut out = String::new();
    let mut rest = s;
    let mut linked = false;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let inner = &rest[start + 1..start + end];
        out.push_str(inner.split_once('|').map_or(inner, |(_, label)| label));
        linked = true;
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let out = out.replace(['*', '`'], "");
    (
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
        linked,
    )
}

fn slack(c: &mut Canvas, v: &Value) {
    c.background = "#FFFFFF";
    c.avatar("#4A154B", false);
    c.text(64, 30, 15, true, "#1D1C1D", "Gantry", 30);
    c.rect(122, 19, 30, 15, 3, "#E8E8E8", None);
    c.text(127, 30, 10, true, "#616061", "APP", 3);
    c.text(160, 30, 12, false, "#616061", "10:42 AM", 10);
    c.y = 58;
    for block in v["blocks"].as_array().into_iter().flatten() {
        match str_of(&block["type"]) {
            "header" => {
                c.text(
                    64,
                    c.y + 4,
                    18,
                    true,
                    "#1D1C1D",
                    str_of(&block["text"]["text"]),
                    60,
                );
                c.y += 30;
            }
            "section" => {
                if let Some(t) = block["text"]["text"].as_str() {
                    for line in t.lines() {
                        let (shown, _) = slack_shown(line);
                        if let Some(quoted) = shown.strip_prefix('>') {
                            c.rect(64, c.y - 12, 4, 18, 2, "#DDDDDD", None);
                            c.text(76, c.y + 2, 14, false, "#1D1C1D", quoted, 70);
                        } else {
                            c.text(
                                64,
                                c.y + 2,
                                14,
                                line.starts_with('*'),
                                "#1D1C1D",
                                &shown,
                                72,
                            );
                        }
                        c.y += 22;
                    }
                }
                let fields = block["fields"].as_array().cloned().unwrap_or_default();
                for (i, f) in fields.iter().enumerate() {
                    let x = if i % 2 == 0 { 64 } else { 350 };
                    let mut lines = str_of(&f["text"]).splitn(2, '\n');
                    let (name, _) = slack_shown(lines.next().unwrap_or(""));
                    let (value, linked) = slack_shown(lines.next().unwrap_or(""));
                    c.text(x, c.y + 4, 14, true, "#1D1C1D", &name, 34);
                    c.text(
                        x,
                        c.y + 22,
                        14,
                        false,
                        if linked { LINK } else { "#1D1C1D" },
                        &value,
                        34,
                    );
                    if i % 2 == 1 || i + 1 == fields.len() {
                        c.y += 44;
                    }
                }
                c.y += 4;
            }
            "actions" => {
                let mut x = 64;
                for e in block["elements"].as_array().into_iter().flatten() {
                    let label = str_of(&e["text"]["text"]);
                    let w = 24 + 8 * label.chars().count() as u32;
                    c.rect(x, c.y - 6, w, 30, 4, "#FFFFFF", Some("#BBBBBB"));
                    c.text(x + 12, c.y + 14, 14, true, "#1D1C1D", label, 30);
                    x += w + 8;
                }
                c.y += 40;
            }
            "context" => {
                for e in block["elements"].as_array().into_iter().flatten() {
                    c.text(
                        64,
                        c.y + 4,
                        12,
                        false,
                        "#616061",
                        &slack_shown(str_of(&e["text"])).0,
                        90,
                    );
                    c.y += 20;
                }
            }
            _ => {}
        }
    }
}

fn teams(c: &mut Canvas, v: &Value) {
    c.background = "#F5F5F5";
    let card = &v["attachments"][0]["content"];
    c.avatar("#5B5FC7", true);
    c.text(64, 30, 14, true, "#242424", "Workflows", 30);
    c.text(148, 30, 12, false, "#616161", "10:42 AM", 10);
    let top = 44;
    let mut inner = Canvas {
        y: top + 16,
        ..Canvas::default()
    };
    for item in card["body"].as_array().into_iter().flatten() {
        match str_of(&item["type"]) {
            "Container" => {
                let fill = match str_of(&item["style"]) {
                    "good" => "#DFF6DD",
                    "attention" => "#FDE7E9",
                    "warning" => "#FFF4CE",
                    _ => "#F0F0F0",
                };
                inner.rect(65, top + 1, WIDTH - 82, 44, 0, fill, None);
                for t in item["items"].as_array().into_iter().flatten() {
                    inner.text(80, top + 29, 17, true, "#242424", str_of(&t["text"]), 60);
                }
                inner.y = top + 72;
            }
            "TextBlock" => {
                let fill = match str_of(&item["color"]) {
                    "Good" => "#0E700E",
                    "Attention" => "#C4314B",
                    "Warning" => "#835C00",
                    _ if item["isSubtle"] == true => "#616161",
                    _ => "#242424",
                };
                let size = if item["size"] == "Small" { 12 } else { 14 };
                inner.text(
                    80,
                    inner.y,
                    size,
                    item["weight"] == "Bolder",
                    fill,
                    str_of(&item["text"]),
                    72,
                );
                inner.y += 24;
            }
            "FactSet" => {
                inner.y += 4;
                for f in item["facts"].as_array().into_iter().flatten() {
                    inner.text(80, inner.y, 14, true, "#242424", str_of(&f["title"]), 16);
                    inner.text(200, inner.y, 14, false, "#242424", str_of(&f["value"]), 56);
                    inner.y += 22;
                }
                inner.y += 6;
            }
            _ => {}
        }
    }
    let mut x = 80;
    let actions = card["actions"].as_array().cloned().unwrap_or_default();
    if !actions.is_empty() {
        inner.y += 4;
        for a in &actions {
            let title = str_of(&a["title"]);
            let w = 28 + 8 * title.chars().count() as u32;
            inner.rect(x, inner.y - 18, w, 30, 4, "#FFFFFF", Some("#D1D1D1"));
            inner.text(x + 14, inner.y + 2, 14, true, "#5B5FC7", title, 30);
            x += w + 8;
        }
        inner.y += 28;
    }
    c.rect(
        64,
        top,
        WIDTH - 80,
        inner.y - top,
        6,
        "#FFFFFF",
        Some("#E0E0E0"),
    );
    c.body.push_str(&inner.body);
    c.y = inner.y;
}

/// Discord markdown as shown: masked links by their label, escapes and
/// bold markers dropped. True when it held a link.
fn discord_shown(s: &str) -> (String, bool) {
    let mut out = String::new();
    let mut linked = false;
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.extend(chars.next()),
            '[' => {
                let label: String = chars.by_ref().take_while(|&c| c != ']').collect();
                out.push_str(&discord_shown(&label).0);
                if chars.peek() == Some(&'(') {
                    chars.by_ref().take_while(|&c| c != ')').for_each(drop);
                }
                linked = true;
            }
            '*' | '\u{200B}' => {}
            c => out.push(c),
        }
    }
    (out, linked)
}

fn discord(c: &mut Canvas, v: &Value) {
    c.background = "#313338";
    let e = &v["embeds"][0];
    c.avatar("#5865F2", true);
    c.text(64, 30, 15, true, "#F2F3F5", "Gantry", 30);
    c.rect(122, 19, 30, 15, 3, "#5865F2", None);
    c.text(127, 30, 10, true, "#FFFFFF", "APP", 3);
    c.text(160, 30, 12, false, "#949BA4", "Today at 10:42", 20);
    let top = 44;
    let mut inner = Canvas {
        y: top + 28,
        ..Canvas::default()
    };
    let title_fill = if e["url"].is_string() {
        "#00A8FC"
    } else {
        "#F2F3F5"
    };
    inner.text(80, inner.y, 15, true, title_fill, str_of(&e["title"]), 64);
    inner.y += 26;
    for line in str_of(&e["description"]).lines() {
        inner.text(
            80,
            inner.y,
            14,
            line.starts_with("**"),
            "#DBDEE1",
            &discord_shown(line).0,
            70,
        );
        inner.y += 20;
    }
    inner.y += 8;
    let mut column = 0;
    for f in e["fields"].as_array().into_iter().flatten() {
        let inline = f["inline"] == true;
        if !inline && column > 0 {
            inner.y += 42;
            column = 0;
        }
        let x = 80 + column * 176;
        let (value, linked) = discord_shown(str_of(&f["value"]));
        inner.text(x, inner.y, 13, true, "#F2F3F5", str_of(&f["name"]), 22);
        let max = if inline { 22 } else { 70 };
        inner.text(
            x,
            inner.y + 18,
            13,
            false,
            if linked { "#00A8FC" } else { "#DBDEE1" },
            &value,
            max,
        );
        if inline && column < 2 {
            column += 1;
        } else {
            inner.y += 42;
            column = 0;
        }
    }
    if column > 0 {
        inner.y += 42;
    }
    inner.text(
        80,
        inner.y,
        11,
        false,
        "#B5BAC1",
        str_of(&e["footer"]["text"]),
        90,
    );
    inner.y += 16;
    let colour = format!("#{:06X}", e["color"].as_u64().unwrap_or(0));
    c.rect(64, top, WIDTH - 96, inner.y - top, 4, "#2B2D31", None);
    c.rect(64, top, 4, inner.y - top, 2, &colour, None);
    c.body.push_str(&inner.body);
    c.y = inner.y;
}

/// Google Chat card HTML as shown: tags dropped, entities decoded, and the
/// first `<font color>` if any.
fn html_shown(s: &str) -> (String, Option<String>, bool) {
    let mut out = String::new();
    let mut colour = None;
    let mut linked = false;
    let mut rest = s;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let tag = &rest[start + 1..start + end];
        if let Some(c) = tag.strip_prefix("font color=\"") {
            colour = c.split('"').next().map(str::to_owned);
        }
        linked |= tag.starts_with("a ");
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    (out, colour, linked)
}

fn google_chat(c: &mut Canvas, v: &Value) {
    c.background = "#FFFFFF";
    let card = &v["cardsV2"][0]["card"];
    c.avatar("#1A73E8", true);
    c.text(64, 30, 14, true, "#1F1F1F", "Gantry", 30);
    c.rect(118, 19, 30, 15, 3, "#E8EAED", None);
    c.text(123, 30, 10, true, "#444746", "App", 3);
    c.text(156, 30, 12, false, "#444746", "10:42 AM", 10);
    c.text(64, 54, 14, false, "#1F1F1F", str_of(&v["text"]), 72);
    let top = 68;
    let mut inner = Canvas {
        y: top + 28,
        ..Canvas::default()
    };
    inner.text(
        80,
        inner.y,
        16,
        true,
        "#1F1F1F",
        str_of(&card["header"]["title"]),
        60,
    );
    inner.text(
        80,
        inner.y + 20,
        12,
        false,
        "#444746",
        str_of(&card["header"]["subtitle"]),
        80,
    );
    inner.y += 36;
    inner.rect(65, inner.y, WIDTH - 98, 1, 0, "#E0E0E0", None);
    inner.y += 24;
    for section in card["sections"].as_array().into_iter().flatten() {
        for w in section["widgets"].as_array().into_iter().flatten() {
            if let Some(d) = w.get("decoratedText") {
                inner.text(
                    80,
                    inner.y,
                    11,
                    false,
                    "#444746",
                    str_of(&d["topLabel"]),
                    40,
                );
                let (text, colour, linked) = html_shown(str_of(&d["text"]));
                let fill = colour.unwrap_or_else(|| {
                    if linked {
                        "#0B57D0".into()
                    } else {
                        "#1F1F1F".into()
                    }
                });
                inner.text(
                    80,
                    inner.y + 18,
                    14,
                    str_of(&d["text"]).contains("<b>"),
                    &fill,
                    &text,
                    70,
                );
                inner.y += 42;
            } else if let Some(list) = w.get("buttonList") {
                let mut x = 80;
                for b in list["buttons"].as_array().into_iter().flatten() {
                    let label = str_of(&b["text"]);
                    let width = 32 + 8 * label.chars().count() as u32;
                    inner.rect(x, inner.y - 12, width, 32, 16, "#0B57D0", None);
                    inner.text(x + 16, inner.y + 9, 14, true, "#FFFFFF", label, 30);
                    x += width + 8;
                }
                inner.y += 36;
            }
        }
    }
    c.rect(
        64,
        top,
        WIDTH - 96,
        inner.y - top,
        8,
        "#FFFFFF",
        Some("#DADCE0"),
    );
    c.body.push_str(&inner.body);
    c.y = inner.y;
}

fn generic(c: &mut Canvas, v: &Value) {
    c.background = "#0D1117";
    c.text(
        16,
        28,
        13,
        true,
        "#8B949E",
        "POST /your/receiver  content-type: application/json",
        80,
    );
    c.y = 52;
    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
    for line in pretty.lines() {
        c.body.push_str(&format!(
            "  <text x=\"16\" y=\"{}\" font-size=\"12\" font-family=\"Menlo, Consolas, monospace\" fill=\"#C9D1D9\" xml:space=\"preserve\">{}</text>\n",
            c.y,
            xml(&super::text::fit(line, 86))
        ));
        c.y += 17;
    }
}

/// `docs/notifications.md`: for each provider, the example's payload and
/// its picture. Written by the example program, checked by a test.
pub fn markdown() -> String {
    let m = example();
    let mut out = String::from(MARKDOWN_INTRO);
    for p in Provider::ALL {
        let json = serde_json::to_string_pretty(&render(p, &m)).unwrap_or_default();
        out.push_str(&format!(
            "\n## {name}\n\n{about}\n\n![{name}: the example as it shows](notifications/{file}.svg)\n\n<details><summary>The JSON Gantry posts</summary>\n\n```json\n{json}\n```\n\n</details>\n",
            name = provider_name(p).replace("a generic receiver", "Generic webhook"),
            about = provider_about(p),
            file = p.as_str(),
        ));
    }
    out
}

const MARKDOWN_INTRO: &str = "# Chat notifications

<!-- Generated by `cargo run -p gantry-core --example notification-pictures`
     from shared/core/src/notify; a test fails when this page is stale. -->

When a build starts or finishes, Gantry posts one message to your team's
chat. A notification target names a provider (`slack`, `teams`, `discord`,
`google-chat` or `generic`) and a webhook URL. The URL is the webhook's
credential, so Gantry treats it as a secret: it appears in no log line and
no error message.

Every message says the same things: the result and its one-line summary,
the repository, the pull request or branch or tag, the commit and its
first line, who pushed, how long the build took, which phase failed, and
buttons to the CodeBuild build and its CloudWatch logs. Text a person
controls (titles, commit messages, branch names) is cut to each service's
documented limits and escaped for its markup, so a commit message can never
ping `@everyone`.

Delivery is retried: a `429` after its `Retry-After` (at most 30 s), a
`5xx` or a failed connection with doubling backoff from 1 s, 4 attempts in
all. Any other refusal (`400` invalid payload, `404` deleted webhook) is not
retried.

The example below is a failed pull-request build whose title and commit
message hold characters every service treats specially (`<`, `&`,
`@everyone`). The pictures are drawn by code from the very payload shown
under them, so they follow the renderers; they are sketches of each client,
not screenshots.
";

fn provider_about(p: Provider) -> &'static str {
    match p {
        Provider::Slack => {
            "An [incoming webhook](https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks) message in Block Kit: a header, the summary and commit, fields, buttons, and a context line. Block Kit has no colour bar; the emoji carries the result."
        }
        Provider::Teams => {
            "A [Workflows webhook](https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using) (\"Post to a channel when a webhook request is received\") message carrying one Adaptive Card 1.4. The result tints the card's top band."
        }
        Provider::Discord => {
            "A [webhook](https://discord.com/developers/docs/resources/webhook#execute-webhook) message with one embed in the result's colour, and `allowed_mentions` that allow no mention at all."
        }
        Provider::GoogleChat => {
            "An [incoming webhook](https://developers.google.com/workspace/chat/quickstart/webhooks) message: a one-line text and a cards v2 card. Cards have no colour bar; the result's colour tints its label."
        }
        Provider::Generic => {
            "For your own receiver: every field of the message, `snake_case`, always present (`null` when absent), versioned by `\"v\": 1`. Nothing is cut or escaped."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_markdown_in_the_docs_follows_the_renderers() {
        let file =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/notifications.md");
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == markdown(),
            "{} is stale: run `cargo run -p gantry-core --example notification-pictures`",
            file.display()
        );
    }

    /// The committed pictures are the ones the renderers draw today.
    #[test]
    fn notify_pictures_in_the_docs_follow_the_renderers() {
        let docs =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/notifications");
        for p in Provider::ALL {
            let file = docs.join(format!("{}.svg", p.as_str()));
            let committed = std::fs::read_to_string(&file).unwrap_or_default();
            assert!(
                committed == svg(p, &example()),
                "{} is stale: run `cargo run -p gantry-core --example notification-pictures`",
                file.display()
            );
        }
    }

    #[test]
    fn notify_pictures_escape_xml() {
        let mut m = example();
        m.branch = Some("<&\"'>".into());
        m.pull_request = None;
        for p in Provider::ALL {
            let s = svg(p, &m);
            assert!(!s.contains("<&"), "{p}");
            assert_eq!(s.matches("<text").count(), s.matches("</text>").count());
        }
    }
}
