//! Fitting user text into chat services' limits, and escaping it for their
//! markup.
//!
//! Lengths are counted in UTF-16 code units, as the services' JavaScript
//! and Java back ends count them: never fewer than Unicode scalar values,
//! so a text that fits in units fits however a service counts characters.
//! Cuts fall on `char` boundaries and end with "…" (one unit).

/// The mark a cut text ends with.
pub(crate) const ELLIPSIS: char = '…';

/// The length of `s` as the services count it.
pub(crate) fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `s`, cut to at most `max` units.
pub fn fit(s: &str, max: usize) -> String {
    fit_escaped(s, max, |_| None)
}

/// `s` with each char escaped by `escape` (None: as is), cut to at most
/// `max` units of escaped text. An escape is never cut in half. `escape`
/// sees the chars in order, so it may escape one by its place.
pub(crate) fn fit_escaped(
    s: &str,
    max: usize,
    mut escape: impl FnMut(char) -> Option<&'static str>,
) -> String {
    let mut out = String::new();
    let mut used = 0;
    // Where `out` stood when there was still room for the ellipsis.
    let mut keep = 0;
    let mut buf = [0u8; 4];
    for c in s.chars() {
        let piece = escape(c).unwrap_or_else(|| c.encode_utf8(&mut buf));
        let n = units(piece);
        if used + n > max {
            out.truncate(keep);
            if max > 0 {
                out.push(ELLIPSIS);
            }
            return out;
        }
        out.push_str(piece);
        used += n;
        if used < max {
            keep = out.len();
        }
    }
    out
}

/// The first non-blank line of `s`, trimmed, with control characters
/// (tabs, escapes) turned into spaces: one line of plain text.
pub(crate) fn one_line(s: &str) -> String {
    let line = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    clean(line)
}

/// `s` without control characters or line breaks.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Slack mrkdwn: `&`, `<`, `>` are the only characters Slack wants escaped.
pub(crate) fn slack_escape(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

/// Google Chat card text is HTML.
pub(crate) fn html_escape(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        _ => None,
    }
}

/// Discord markdown: a backslash before every character that could start
/// formatting, a masked link or a mention.
pub(crate) fn discord_escape(c: char) -> Option<&'static str> {
    match c {
        '\\' => Some("\\\\"),
        '*' => Some("\\*"),
        '_' => Some("\\_"),
        '~' => Some("\\~"),
        '`' => Some("\\`"),
        '|' => Some("\\|"),
        '[' => Some("\\["),
        ']' => Some("\\]"),
        '(' => Some("\\("),
        ')' => Some("\\)"),
        '<' => Some("\\<"),
        '>' => Some("\\>"),
        '#' => Some("\\#"),
        '@' => Some("@\u{200B}"),
        _ => None,
    }
}

/// Adaptive Cards (Microsoft Teams) read TextBlock text and facts as a
/// CommonMark subset, bold and italic (`*`, `_`) and links (`[x](y)`) in
/// the line; CommonMark's backslash makes any ASCII punctuation literal. A
/// backslash goes before those, before code and strikethrough marks some
/// clients also render (`` ` ``, `~`), and before `{`, which opens the
/// `{{DATE(…)}}` and `{{TIME(…)}}` functions TextBlocks expand:
/// <https://learn.microsoft.com/en-us/adaptive-cards/authoring-cards/text-features>.
/// What a line starts with is [`markdown_block_marker`]'s part.
pub(crate) fn adaptive_card_escape(c: char) -> Option<&'static str> {
    match c {
        '\\' => Some("\\\\"),
        '*' => Some("\\*"),
        '_' => Some("\\_"),
        '~' => Some("\\~"),
        '`' => Some("\\`"),
        '[' => Some("\\["),
        ']' => Some("\\]"),
        '(' => Some("\\("),
        ')' => Some("\\)"),
        '{' => Some("\\{"),
        _ => None,
    }
}

/// Where `line` opens a markdown block if it is the first line of a text:
/// the index (in chars) of the marker of a list item (`-`, `+`, `*`, or
/// `1.` / `1)`), a heading (`#`), a quote (`>`) or a rule (`---`), with
/// its escape. Elsewhere in a line these characters are plain.
pub(crate) fn markdown_block_marker(line: &str) -> Option<(usize, &'static str)> {
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    // CommonMark: an ordered list marker is 1 to 9 digits.
    if (1..=9).contains(&digits) {
        return match line.chars().nth(digits) {
            Some('.') => Some((digits, "\\.")),
            Some(')') => Some((digits, "\\)")),
            _ => None,
        };
    }
    match line.chars().next()? {
        '-' => Some((0, "\\-")),
        '+' => Some((0, "\\+")),
        '*' => Some((0, "\\*")),
        '#' => Some((0, "\\#")),
        '>' => Some((0, "\\>")),
        _ => None,
    }
}

/// Google Chat text messages have no escape: `<users/all>` would mention
/// everyone. Angle brackets in user text become their look-alikes.
pub(crate) fn google_text_escape(c: char) -> Option<&'static str> {
    match c {
        '<' => Some("‹"),
        '>' => Some("›"),
        _ => None,
    }
}

/// `url` if it is one a link can safely carry: http(s), printable ASCII
/// without spaces, quotes or angle brackets, at most `max` characters. A
/// URL is never cut: one that does not qualify is left out.
pub(crate) fn link_url(url: Option<&str>, max: usize) -> Option<&str> {
    let url = url?.trim();
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= max
        && url
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\\' | b'`'));
    ok.then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_fit_cuts_on_char_boundaries_with_an_ellipsis() {
        assert_eq!(fit("hello", 5), "hello");
        assert_eq!(fit("hello!", 5), "hell…");
        assert_eq!(fit("héllo wörld", 6), "héllo…");
        // An emoji is two units: it is kept whole or not at all.
        assert_eq!(fit("ab😀cd", 4), "ab…");
        assert_eq!(fit("ab😀cd", 5), "ab😀…");
        assert_eq!(fit("anything", 1), "…");
        assert_eq!(fit("anything", 0), "");
        assert_eq!(fit("", 3), "");
        for max in 0..12 {
            assert!(units(&fit("ab😀cd€f😀gh", max)) <= max);
        }
    }

    #[test]
    fn notify_escapes_are_never_cut_in_half() {
        assert_eq!(fit_escaped("a & b", 20, slack_escape), "a &amp; b");
        assert_eq!(fit_escaped("a & b", 7, slack_escape), "a …");
        assert_eq!(fit_escaped("a & b", 8, slack_escape), "a &amp;…");
        assert_eq!(fit_escaped("<!here>", 100, slack_escape), "&lt;!here&gt;");
        assert_eq!(
            fit_escaped("<b>\"x\"</b>", 100, html_escape),
            "&lt;b&gt;&quot;x&quot;&lt;/b&gt;"
        );
        assert_eq!(
            fit_escaped("[x](http://e) @everyone *b*", 100, discord_escape),
            "\\[x\\]\\(http://e\\) @\u{200B}everyone \\*b\\*"
        );
        assert_eq!(
            fit_escaped("[x](http://e) **b** _i_ \\", 100, adaptive_card_escape),
            "\\[x\\]\\(http://e\\) \\*\\*b\\*\\* \\_i\\_ \\\\"
        );
        assert_eq!(fit_escaped("a_b", 3, adaptive_card_escape), "a…");
    }

    #[test]
    fn notify_block_markers_are_found_only_at_the_start() {
        assert_eq!(markdown_block_marker("- a"), Some((0, "\\-")));
        assert_eq!(markdown_block_marker("123. a"), Some((3, "\\.")));
        assert_eq!(markdown_block_marker("7) a"), Some((1, "\\)")));
        assert_eq!(markdown_block_marker("1234567890. a"), None);
        assert_eq!(markdown_block_marker("v1. a"), None);
        assert_eq!(markdown_block_marker("2024 plans"), None);
        assert_eq!(markdown_block_marker("a - b"), None);
        assert_eq!(markdown_block_marker(""), None);
    }

    #[test]
    fn notify_one_line_takes_the_first_non_blank_line() {
        assert_eq!(one_line("\n\n  Fix it  \r\nbody"), "Fix it");
        assert_eq!(one_line("tab\there\u{1b}[31m"), "tab here [31m");
        assert_eq!(one_line(""), "");
    }

    #[test]
    fn notify_links_carry_only_safe_urls() {
        assert_eq!(
            link_url(Some("https://x.io/a?b=1#c"), 100),
            Some("https://x.io/a?b=1#c")
        );
        assert_eq!(link_url(Some("javascript:alert(1)"), 100), None);
        assert_eq!(link_url(Some("https://x.io/a b"), 100), None);
        assert_eq!(link_url(Some("https://x.io/<a>"), 100), None);
        assert_eq!(link_url(Some("https://x.io/aaaa"), 10), None);
        assert_eq!(link_url(None, 10), None);
    }
}
