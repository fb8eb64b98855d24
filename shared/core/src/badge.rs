//! Build status badges: a shields.io-style flat SVG per branch, stored in S3
//! for READMEs to show.

/// What a badge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadgeState {
    Passing,
    Failing,
    Running,
    Error,
    Unknown,
}

impl BadgeState {
    /// The message on the right-hand side.
    pub fn message(self) -> &'static str {
        match self {
            BadgeState::Passing => "passing",
            BadgeState::Failing => "failing",
            BadgeState::Running => "running",
            BadgeState::Error => "error",
            BadgeState::Unknown => "unknown",
        }
    }

    /// The message's background, shields.io's palette.
    pub fn colour(self) -> &'static str {
        match self {
            BadgeState::Passing => "#4c1",    // brightgreen
            BadgeState::Failing => "#e05d44", // red
            BadgeState::Running => "#dfb317", // yellow
            BadgeState::Error => "#fe7d37",   // orange
            BadgeState::Unknown => "#9f9f9f", // lightgrey
        }
    }
}

/// The label's background.
const LABEL_COLOUR: &str = "#555";
/// Space left and right of each text, in pixels.
const PADDING: f64 = 5.0;

/// A flat badge: `label` on grey, the state's message on its colour.
///
/// The label may be anything (it usually holds a branch name): it is put on
/// one line, characters XML cannot hold are replaced, and markup characters
/// are escaped, so the output is always well-formed XML.
pub fn svg(label: &str, state: BadgeState) -> String {
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                ' '
            } else if xml_char(c) {
                c
            } else {
                '\u{FFFD}'
            }
        })
        .collect();
    let message = state.message();
    let label_text = text_width(&label);
    let message_text = text_width(message);
    let label_width = (label_text + 2.0 * PADDING).ceil() as u64;
    let message_width = (message_text + 2.0 * PADDING).ceil() as u64;
    let width = label_width + message_width;
    // Text is drawn at 10× and scaled down, as shields.io does, for
    // sub-pixel placement.
    let label_x = label_width * 5;
    let message_x = label_width * 10 + message_width * 5;
    let label_length = (label_text * 10.0).round() as u64;
    let message_length = (message_text * 10.0).round() as u64;
    let colour = state.colour();
    let label = escape(&label);
    let title = format!("{label}: {message}");
    format!(
        concat!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{title}">"##,
            r##"<title>{title}</title>"##,
            r##"<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>"##,
            r##"<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>"##,
            r##"<g clip-path="url(#r)"><rect width="{label_width}" height="20" fill="{label_colour}"/><rect x="{label_width}" width="{message_width}" height="20" fill="{colour}"/><rect width="{width}" height="20" fill="url(#s)"/></g>"##,
            r##"<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110">"##,
            r##"<text aria-hidden="true" x="{label_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{label_length}">{label}</text>"##,
            r##"<text x="{label_x}" y="140" transform="scale(.1)" fill="#fff" textLength="{label_length}">{label}</text>"##,
            r##"<text aria-hidden="true" x="{message_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{message_length}">{message}</text>"##,
            r##"<text x="{message_x}" y="140" transform="scale(.1)" fill="#fff" textLength="{message_length}">{message}</text>"##,
            r##"</g></svg>"##,
        ),
        width = width,
        title = title,
        label_width = label_width,
        label_colour = LABEL_COLOUR,
        message_width = message_width,
        colour = colour,
        label_x = label_x,
        message_x = message_x,
        label_length = label_length,
        message_length = message_length,
        label = label,
        message = message,
    )
}

/// The S3 key of a branch's badge: `badges/<owner>/<name>/<branch>.svg`.
///
/// Each part is percent-encoded (everything but `A-Z a-z 0-9 - . _ ~`), so a
/// `/` in a branch name stays inside one path segment: `feature/x` is
/// stored as `badges/octo-org/widgets/feature%2Fx.svg`. The key holds a
/// literal `%`, so a URL that fetches it encodes that once more:
/// `…/feature%252Fx.svg`.
pub fn badge_key(repo: &str, branch: &str) -> String {
    key_under("badges/", repo, branch)
}

/// Where a repository's badges go: `badges/`, which `PublicBadges=true`
/// lets anyone read, or `private-badges/`, which nobody outside the
/// account can. A private repository's badges are private unless its
/// gantry.yaml entry says `public-badge: true`: a public badge names the
/// repository and its branches, and shows whether they build.
pub fn key_for(repo: &str, branch: &str, private_repository: bool, public_badge: bool) -> String {
    if private_repository && !public_badge {
        key_under("private-badges/", repo, branch)
    } else {
        badge_key(repo, branch)
    }
}

fn key_under(prefix: &str, repo: &str, branch: &str) -> String {
    let mut key = String::from(prefix);
    match repo.split_once('/') {
        Some((owner, name)) => {
            percent_encode(owner, &mut key);
            key.push('/');
            percent_encode(name, &mut key);
        }
        None => percent_encode(repo, &mut key),
    }
    key.push('/');
    percent_encode(branch, &mut key);
    key.push_str(".svg");
    key
}

fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Characters XML 1.0 allows in a document.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The width of `text` in Verdana 11px, in pixels (approximate: an ASCII
/// table, 7px for anything else, 11px for wide scripts).
fn text_width(text: &str) -> f64 {
    text.chars().map(char_width).sum()
}

fn char_width(c: char) -> f64 {
    /// Verdana 11px advance widths for ' ' (0x20) to '~' (0x7E).
    const ASCII: [f64; 95] = [
        3.87, 4.33, 5.05, 9.0, 6.99, 11.84, 7.99, 2.95, 4.99, 4.99, 6.99, 9.0, 4.0, 4.99, 4.0,
        4.99, // ' ' to '/'
        6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, 6.99, // '0' to '9'
        4.99, 4.99, 9.0, 9.0, 9.0, 5.98, 11.0, // ':' to '@'
        7.52, 7.54, 7.68, 8.48, 6.96, 6.32, 8.53, 8.27, 4.61, 5.0, 7.62, 6.12, 9.27, 8.23, 8.66,
        6.63, 8.66, 7.65, 7.52, 6.78, 8.05, 7.52, 10.88, 7.54, 6.77, 7.54, // 'A' to 'Z'
        4.99, 4.99, 4.99, 9.0, 6.99, 6.99, // '[' to '`'
        6.65, 6.82, 5.72, 6.82, 6.58, 3.78, 6.82, 6.96, 3.01, 3.78, 6.43, 3.01, 10.69, 6.96, 6.68,
        6.82, 6.82, 4.69, 5.72, 4.3, 6.96, 6.43, 8.97, 6.43, 6.43, 5.64, // 'a' to 'z'
        6.98, 4.99, 6.98, 9.0, // '{' to '~'
    ];
    match c {
        ' '..='~' => ASCII[c as usize - 0x20],
        // CJK, Hangul, full-width forms, emoji: about an em.
        '\u{1100}'..='\u{115F}'
        | '\u{2E80}'..='\u{A4CF}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF00}'..='\u{FF60}'
        | '\u{1F300}'..='\u{1FAFF}'
        | '\u{20000}'..='\u{3FFFD}' => 11.0,
        c if c.is_control() => 0.0,
        _ => 7.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The elements [`svg`] writes.
    const TAGS: [&str; 8] = [
        "svg",
        "title",
        "linearGradient",
        "stop",
        "clipPath",
        "rect",
        "g",
        "text",
    ];
    const ENTITIES: [&str; 5] = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];

    /// A small well-formedness check: every `<` opens a known tag, tags
    /// balance, attribute values are quoted and hold no `<`, and every `&`
    /// starts a known entity. Returns the text nodes.
    fn check_xml(doc: &str) -> Result<Vec<String>, String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut texts = Vec::new();
        let mut rest = doc;
        while let Some(open) = rest.find('<') {
            texts.push(rest[..open].to_owned());
            let after = &rest[open + 1..];
            let close = after.find('>').ok_or("unclosed tag")?;
            let tag = &after[..close];
            if tag.contains('<') {
                return Err(format!("'<' inside tag {tag:?}"));
            }
            let (closing, body) = match tag.strip_prefix('/') {
                Some(body) => (true, body),
                None => (false, tag),
            };
            let self_closing = body.ends_with('/');
            let body = body.trim_end_matches('/');
            let name = body.split(' ').next().unwrap_or_default();
            if !TAGS.contains(&name) {
                return Err(format!("unknown tag {name:?}"));
            }
            if body[name.len()..].matches('"').count() % 2 != 0 {
                return Err(format!("unbalanced quotes in {tag:?}"));
            }
            if closing {
                if stack.pop() != Some(name) {
                    return Err(format!("</{name}> closes nothing open"));
                }
            } else if !self_closing {
                stack.push(name);
            }
            if stack.is_empty() && !after[close + 1..].is_empty() {
                return Err("content after the root element".into());
            }
            rest = &after[close + 1..];
        }
        texts.push(rest.to_owned());
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        let mut amp = doc;
        while let Some(at) = amp.find('&') {
            if !ENTITIES.iter().any(|e| amp[at..].starts_with(e)) {
                return Err(format!("bare '&' at {:?}", &amp[at..]));
            }
            amp = &amp[at + 1..];
        }
        Ok(texts)
    }

    #[test]
    fn the_checker_catches_what_it_should() {
        assert!(check_xml("<svg><text>a<b</text></svg>").is_err());
        assert!(check_xml("<svg><text>a & b</text></svg>").is_err());
        assert!(check_xml("<svg><text>x</svg>").is_err());
        assert!(check_xml("<svg><script/></svg>").is_err());
        assert!(check_xml("<svg><g/></svg>x").is_err());
        assert!(check_xml("<svg><text>a &amp; b</text></svg>").is_ok());
    }

    #[test]
    fn branch_names_are_escaped_and_the_badge_is_well_formed() {
        let doc = svg(r#"a&b<c>"d"'e'"#, BadgeState::Failing);
        let texts = check_xml(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert!(doc.contains("a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;"));
        assert!(
            texts
                .iter()
                .any(|t| t == "a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;")
        );
        assert!(doc.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert!(doc.contains(r#"role="img""#));
        assert!(
            doc.contains(r#"aria-label="a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;: failing""#)
        );
        assert!(doc.contains("<title>a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;: failing</title>"));
        assert!(doc.contains(r##"fill="#e05d44""##));
        assert!(doc.contains(r##"fill="#555""##));
    }

    #[test]
    fn each_state_has_its_own_colour_and_message() {
        let states = [
            BadgeState::Passing,
            BadgeState::Failing,
            BadgeState::Running,
            BadgeState::Error,
            BadgeState::Unknown,
        ];
        for (i, a) in states.iter().enumerate() {
            for b in &states[i + 1..] {
                assert_ne!(a.colour(), b.colour());
            }
            let doc = svg("main", *a);
            assert!(doc.contains(&format!(">{}</text>", a.message())));
            assert!(doc.contains(&format!(r#"fill="{}""#, a.colour())));
            check_xml(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        }
    }

    #[test]
    fn width_follows_the_text() {
        let width = |doc: &str| -> u64 {
            let at = doc.find("width=\"").expect("width") + 7;
            doc[at..]
                .split('"')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("number")
        };
        let short = width(&svg("ci", BadgeState::Passing));
        let long = width(&svg("feature/a-much-longer-branch", BadgeState::Passing));
        assert!(short < long, "{short} {long}");
        // "build" + "passing": 37 + 52 px, shields.io draws 37 + 53.
        assert_eq!(width(&svg("build", BadgeState::Passing)), 89);
        // Wide, narrow and unknown characters all take room.
        assert!(text_width("主分支") > text_width("iii"));
    }

    #[test]
    fn characters_xml_cannot_hold_are_replaced() {
        let doc = svg("a\u{0}b\u{1b}[31mc\u{FFFF}d\ne", BadgeState::Unknown);
        check_xml(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert!(doc.contains(">a\u{FFFD}b\u{FFFD}[31mc\u{FFFD}d e</text>"));
        assert!(!doc.chars().any(|c| !xml_char(c) || c == '\n'));
    }

    #[test]
    fn a_private_repositorys_badge_is_private_unless_listed() {
        assert_eq!(
            key_for("octo-org/secret", "main", true, false),
            "private-badges/octo-org/secret/main.svg"
        );
        assert_eq!(
            key_for("octo-org/secret", "main", true, true),
            "badges/octo-org/secret/main.svg"
        );
        assert_eq!(
            key_for("octo-org/widgets", "main", false, false),
            "badges/octo-org/widgets/main.svg"
        );
    }

    #[test]
    fn badge_keys_keep_a_branch_in_one_segment() {
        assert_eq!(
            badge_key("octo-org/widgets", "main"),
            "badges/octo-org/widgets/main.svg"
        );
        assert_eq!(
            badge_key("octo-org/widgets", "feature/x"),
            "badges/octo-org/widgets/feature%2Fx.svg"
        );
        assert_eq!(
            badge_key("octo-org/widgets.rs", "fix/über 100%"),
            "badges/octo-org/widgets.rs/fix%2F%C3%BCber%20100%25.svg"
        );
        assert_eq!(
            badge_key("octo-org/widgets", "../../x"),
            "badges/octo-org/widgets/..%2F..%2Fx.svg"
        );
    }

    proptest! {
        #[test]
        fn any_label_gives_well_formed_xml(label in any::<String>(), state in 0..5usize) {
            let state = [
                BadgeState::Passing,
                BadgeState::Failing,
                BadgeState::Running,
                BadgeState::Error,
                BadgeState::Unknown,
            ][state];
            let doc = svg(&label, state);
            let texts = check_xml(&doc).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
            for t in texts {
                prop_assert!(!t.contains('<') && !t.contains('>'));
            }
            prop_assert!(doc.chars().all(xml_char));
        }

        #[test]
        fn markup_heavy_labels_give_well_formed_xml(label in "[<>&\"' a-z/]{0,40}") {
            let doc = svg(&label, BadgeState::Passing);
            check_xml(&doc).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
        }

        #[test]
        fn badge_keys_have_exactly_four_segments(branch in any::<String>()) {
            let key = badge_key("octo-org/widgets", &branch);
            prop_assert_eq!(key.split('/').count(), 4);
            prop_assert!(key.is_ascii());
        }
    }
}
