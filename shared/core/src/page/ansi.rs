//! A log line as HTML: text escaped, the terminal's colours (SGR escape
//! sequences) as `<span class="…">`, every other escape sequence and
//! control character dropped, and a line a progress bar rewrote with `\r`
//! shown as it ended.

/// `&`, `<`, `>`, `"` and `'` escaped: safe in text and in quoted
/// attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The pen a run of text is drawn with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pen {
    /// 0–15: the terminal's 16 colours.
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Pen {
    fn classes(&self) -> String {
        let mut c = Vec::new();
        if let Some(fg) = self.fg {
            c.push(format!("f{fg}"));
        }
        if let Some(bg) = self.bg {
            c.push(format!("g{bg}"));
        }
        for (on, name) in [
            (self.bold, "b"),
            (self.dim, "d"),
            (self.italic, "i"),
            (self.underline, "u"),
        ] {
            if on {
                c.push(name.to_owned());
            }
        }
        c.join(" ")
    }

    fn apply(&mut self, params: &str) {
        let codes: Vec<u16> = if params.is_empty() {
            vec![0]
        } else {
            params
                .split([';', ':'])
                .map(|p| p.parse().unwrap_or(0))
                .collect()
        };
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => *self = Pen::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => {
                    self.bold = false;
                    self.dim = false;
                }
                23 => self.italic = false,
                24 => self.underline = false,
                n @ 30..=37 => self.fg = Some((n - 30) as u8),
                39 => self.fg = None,
                n @ 40..=47 => self.bg = Some((n - 40) as u8),
                49 => self.bg = None,
                n @ 90..=97 => self.fg = Some((n - 90 + 8) as u8),
                n @ 100..=107 => self.bg = Some((n - 100 + 8) as u8),
                // 256 colours and true colour: the nearest of the 16 for
                // the first 16, otherwise left as the default colour.
                38 | 48 => {
                    let fg = codes[i] == 38;
                    match codes.get(i + 1) {
                        Some(5) => {
                            let n = codes.get(i + 2).copied().unwrap_or(0);
                            let colour = (n < 16).then_some(n as u8);
                            if fg {
                                self.fg = colour;
                            } else {
                                self.bg = colour;
                            }
                            i += 2;
                        }
                        Some(2) => i += 4,
                        _ => {}
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// What terminal output is made of, as far as a page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A character shown (tab and newline included).
    Char(char),
    /// A colour change: the parameters of an SGR sequence, `ESC [ … m`.
    Colour(&'a str),
}

/// Walks `text`'s terminal output, piece by piece: other control
/// characters and every other escape sequence (cursor moves, window
/// titles, hyperlinks) are dropped.
pub fn scan(text: &str, mut each: impl FnMut(Piece<'_>)) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            if !c.is_control() || c == '\t' || c == '\n' {
                each(Piece::Char(c));
            }
            continue;
        }
        match chars.peek() {
            // CSI: parameters and intermediates, then one final byte.
            Some('[') => {
                chars.next();
                let mut params = String::new();
                let mut end = None;
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        end = Some(c);
                        break;
                    }
                    params.push(c);
                }
                if end == Some('m') {
                    each(Piece::Colour(&params));
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        chars.next();
                        break;
                    }
                }
            }
            // A two-character escape.
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
}

/// One log line as HTML (no trailing newline).
pub fn line_html(line: &str) -> String {
    // A progress bar redraws its line after `\r`: what shows is the last.
    let line = line.trim_end_matches(['\n', '\r']);
    let line = line.rsplit('\r').next().unwrap_or(line);
    let mut out = String::with_capacity(line.len() + 16);
    let mut pen = Pen::default();
    let mut text = String::new();
    let flush = |out: &mut String, text: &mut String, pen: &Pen| {
        if text.is_empty() {
            return;
        }
        let classes = pen.classes();
        if classes.is_empty() {
            escape_into(out, text);
        } else {
            out.push_str("<span class=\"");
            out.push_str(&classes);
            out.push_str("\">");
            escape_into(out, text);
            out.push_str("</span>");
        }
        text.clear();
    };
    scan(line, |piece| match piece {
        Piece::Char(c) => text.push(c),
        Piece::Colour(params) => {
            flush(&mut out, &mut text, &pen);
            pen.apply(params);
        }
    });
    flush(&mut out, &mut text, &pen);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn colours_become_classes_and_resets_end_them() {
        assert_eq!(
            line_html("\u{1b}[31merror\u{1b}[0m: it broke"),
            "<span class=\"f1\">error</span>: it broke"
        );
        assert_eq!(
            line_html("\u{1b}[1;92mok\u{1b}[39m bold"),
            "<span class=\"f10 b\">ok</span><span class=\"b\"> bold</span>"
        );
        assert_eq!(
            line_html("\u{1b}[38;5;3my\u{1b}[m"),
            "<span class=\"f3\">y</span>"
        );
        assert_eq!(line_html("\u{1b}[38;2;1;2;3mrgb"), "rgb");
    }

    #[test]
    fn markup_in_a_log_is_text() {
        assert_eq!(
            line_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(
            line_html("\u{1b}[31m<img src=x onerror=alert(1)>"),
            "<span class=\"f1\">&lt;img src=x onerror=alert(1)&gt;</span>"
        );
    }

    #[test]
    fn other_escapes_and_controls_are_dropped_and_progress_shows_its_end() {
        assert_eq!(line_html("\u{1b}]0;title\u{7}text\u{1b}[2K"), "text");
        assert_eq!(line_html(" 10%\r 50%\r100% done\n"), "100% done");
        assert_eq!(line_html("a\u{0}b\u{8}c\td"), "abc\td");
    }

    /// The text with our own tags taken out: `<span class="…">` whose
    /// classes are the renderer's, and `</span>`.
    fn without_our_tags(html: &str) -> String {
        let mut out = String::new();
        let mut rest = html;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("<span class=\"")
                && let Some(end) = after.find("\">")
                && after[..end]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b' ')
            {
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix("</span>") {
                rest = after;
            } else {
                let c = rest.chars().next().unwrap_or_default();
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    proptest! {
        #[test]
        fn no_input_makes_markup(line in "\\PC*|[<>&\"'\u{1b}\\[;0-9m]*") {
            let html = line_html(&line);
            let text = without_our_tags(&html);
            prop_assert!(!text.contains(['<', '>', '"', '\'']), "{html}");
        }
    }
}
