//! A bounded YAML reader that remembers where everything is.
//!
//! Gantry reads YAML written by people (`gantry.yaml`, buildspecs) and must
//! say *where* a mistake is. This builds a small tree from the parser's
//! events, keeping line and column for every node, and refuses inputs that
//! are too large, too deep, or expand too far through aliases (the "billion
//! laughs"), so a hostile file costs a bounded amount of work.

use std::fmt;

use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::Marker;

mod build;
pub mod read;

use build::Builder;

/// A place in the source: 1-based line and column.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    fn from_marker(m: &Marker) -> Self {
        Pos {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            col: u32::try_from(m.col()).unwrap_or(u32::MAX).saturating_add(1),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// How a scalar was written; quoting changes what a plain `true` or `1` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Scalar {
        text: String,
        style: Style,
        /// A local tag such as CloudFormation's `!Ref`, without the `!`.
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
    /// The tag on a collection (`!Sub [..]`), or on a scalar as in `Value`.
    pub tag: Option<String>,
}

impl Node {
    /// The scalar's text, for scalars; `None` for null and collections.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// What kind of node this is, in words for an error message.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Scalar { .. } => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Looks up a key in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Converts to JSON: scalars become strings, numbers or booleans as a
    /// plain YAML 1.2 scalar would; tags are dropped.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Scalar { text, style, .. } => {
                if *style == Style::Plain {
                    match text.as_str() {
                        "true" | "True" | "TRUE" => return true.into(),
                        "false" | "False" | "FALSE" => return false.into(),
                        _ => {}
                    }
                    if let Ok(n) = text.parse::<i64>() {
                        return n.into();
                    }
                    if let Ok(f) = text.parse::<f64>()
                        && let Some(n) = serde_json::Number::from_f64(f)
                    {
                        return serde_json::Value::Number(n);
                    }
                }
                serde_json::Value::String(text.clone())
            }
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

/// Bounds on what a document may cost to read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    /// Nodes in the tree after aliases are expanded.
    pub max_nodes: usize,
    /// Bytes of text (scalars, keys included, and tags) the tree holds
    /// after aliases are expanded, counting the copy each anchor keeps for
    /// its aliases. Nodes alone do not bound memory: one 600 KB scalar
    /// read through 1,000 aliases is 1,000 nodes and 600 MB.
    ///
    /// Without aliases a document's text is at most 1.5 times its size
    /// (`\L` writes 3 bytes for 2), so this should be at least 1.5 ×
    /// `max_bytes`, and some more for anchors.
    pub max_expanded_bytes: usize,
}

impl Limits {
    /// What [`Default`] gives, usable in a `const`.
    pub const DEFAULT: Limits = Limits {
        max_bytes: 1024 * 1024,
        max_depth: 64,
        max_nodes: 100_000,
        // 4 × `max_bytes`: room for any document without aliases and for
        // anchors as people use them, while a hostile one costs at most
        // 4 MiB of text (plus `max_nodes` nodes, ~100 bytes each): small
        // beside the 128 MB a function has (`template.yaml`, Globals,
        // `MemorySize: 128`).
        max_expanded_bytes: 4 * 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses the first document of `text`. An empty document is `Ok(None)`.
pub fn parse(text: &str, limits: Limits) -> Result<Option<Node>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "file is {} bytes, more than the {} bytes allowed",
                text.len(),
                limits.max_bytes
            ),
        });
    }
    // A byte-order mark is legal at the start and CodeBuild accepts it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = Builder::new(text, limits);
    // The scanner takes a NUL for the end of input: it would validate only
    // what comes before one and ignore the rest. YAML does not allow the
    // character at all, so say where it is.
    if let Some(at) = text.find('\0') {
        return Err(YamlError {
            pos: position_at(text, at),
            message: "the file contains a NUL character, which YAML does not allow \
                      (everything after it would be ignored)"
                .into(),
        });
    }
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        // A limit we hit first is the more useful message.
        if let Some(err) = builder.error {
            return Err(err);
        }
        return Err(YamlError {
            pos: clamp_to_text(text, Pos::from_marker(e.marker())),
            message: describe_scan_error(e.info()),
        });
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    if builder.documents.len() > 1 {
        let pos = builder.documents[1]
            .as_ref()
            .map_or(Pos::default(), |n| n.pos);
        return Err(YamlError {
            pos,
            message: "more than one YAML document ('---') in the file; only one is allowed".into(),
        });
    }
    Ok(builder.documents.into_iter().next().flatten())
}

// A scan error's position is held inside the text: the scanner reads an
// implicit line break after a last line that has none, so an error at the
// end of such a file would point at a line that does not exist; and it
// counts a lone `\r` differently, so a column can fall past the end of the
// line (fuzz config, crash-41c95d4f).

/// `pos` moved inside `text`: onto its last line, and no further than one
/// past the end of its line (lines and columns counted as YAML does).
pub(crate) fn clamp_to_text(text: &str, pos: Pos) -> Pos {
    hold(&line_lengths(text), pos)
}

/// `pos` held inside a text whose lines have `lengths` characters: a line
/// past the last is the end of the text, a column at most one past the end
/// of its line.
fn hold(lengths: &[u32], pos: Pos) -> Pos {
    let last = u32::try_from(lengths.len()).unwrap_or(u32::MAX);
    let line = pos.line.max(1);
    let (line, col) = if line > last {
        (last, u32::MAX)
    } else {
        (line, pos.col)
    };
    let len = usize::try_from(line.saturating_sub(1))
        .ok()
        .and_then(|i| lengths.get(i))
        .copied()
        .unwrap_or(0);
    Pos {
        line,
        col: col.clamp(1, len.saturating_add(1)),
    }
}

/// The length in characters of each line of `text`, breaking lines as YAML
/// does (`\r\n`, `\r`, `\n`). One pass over the bytes: a character is
/// counted at its first byte (any byte but a UTF-8 continuation byte), and
/// the line breaks are ASCII, so they are never inside a character.
fn line_lengths(text: &str) -> Vec<u32> {
    let bytes = text.as_bytes();
    let mut lines = Vec::with_capacity(bytes.len() / 32 + 1);
    let mut len = 0u32;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\n' || b == b'\r' {
            lines.push(len);
            len = 0;
            if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        } else if !is_continuation_byte(b) {
            len = len.saturating_add(1);
        }
        i += 1;
    }
    lines.push(len);
    lines
}

/// A byte that continues a UTF-8 character (`0b10xx_xxxx`).
fn is_continuation_byte(b: u8) -> bool {
    b & 0b1100_0000 == 0b1000_0000
}

/// The line and column (in characters) of byte offset `at` of `text`,
/// counting line breaks as YAML does (`\r\n`, `\r`, `\n`).
fn position_at(text: &str, at: usize) -> Pos {
    let bytes = text.as_bytes();
    let at = at.min(text.len());
    let mut line: u32 = 1;
    let mut line_start = 0;
    for (i, &b) in bytes[..at].iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            line = line.saturating_add(1);
            line_start = i + 1;
        }
    }
    let col = text
        .get(line_start..at)
        .map_or(0, |l| l.chars().count())
        .saturating_add(1);
    Pos {
        line,
        col: u32::try_from(col).unwrap_or(u32::MAX),
    }
}

fn describe_scan_error(info: &str) -> String {
    if info.contains("tab") {
        format!("{info} (YAML does not allow tabs for indentation; use spaces)")
    } else {
        info.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Each line's length is its count of characters, lines broken at
        /// `\r\n`, `\r` and `\n` as YAML breaks them.
        #[test]
        fn line_lengths_count_the_characters_of_each_line(
            text in "([a\u{e9}\u{20ac}\u{1f600} :-]|\r|\n|\r\n){0,64}"
        ) {
            let mut expected = vec![0u32];
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\r' | '\n' => {
                        if c == '\r' && chars.peek() == Some(&'\n') {
                            chars.next();
                        }
                        expected.push(0);
                    }
                    _ => *expected.last_mut().expect("one line at least") += 1,
                }
            }
            proptest::prop_assert_eq!(line_lengths(&text), expected);
        }
    }

    fn doc(text: &str) -> Node {
        match parse(text, Limits::default()) {
            Ok(Some(node)) => node,
            other => panic!("expected a document, got {other:?}"),
        }
    }

    #[test]
    fn positions_are_one_based_line_and_column() {
        let root = doc("version: 0.2\nphases:\n  build:\n    commands:\n      - make\n");
        assert_eq!(root.pos, Pos { line: 1, col: 1 });
        let cmd = &root
            .get("phases")
            .and_then(|p| p.get("build"))
            .and_then(|b| b.get("commands"))
            .map(|c| c.value.clone());
        let Some(Value::Seq(items)) = cmd else {
            panic!("commands is not a list: {cmd:?}")
        };
        assert_eq!(items[0].pos, Pos { line: 5, col: 9 });
        assert_eq!(items[0].as_str(), Some("make"));
    }

    #[test]
    fn plain_null_spellings_are_null_but_quoted_ones_are_strings() {
        let root = doc("a: ~\nb: null\nc: 'null'\nd:\n");
        assert!(root.get("a").is_some_and(Node::is_null));
        assert!(root.get("b").is_some_and(Node::is_null));
        assert_eq!(root.get("c").and_then(Node::as_str), Some("null"));
        assert!(root.get("d").is_some_and(Node::is_null));
    }

    #[test]
    fn billion_laughs_is_refused_with_a_position() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h'] {
            text.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = name;
        }
        let err = parse(&text, Limits::default()).expect_err("must be refused");
        assert!(err.message.contains("more than 100000 nodes"), "{err}");
    }

    /// A 600 KB anchored scalar read through 1,000 aliases is only ~1,000
    /// nodes, but 600 MB of text: it is refused at the alias that crosses
    /// the byte cap (the 5th: 600 KiB read, 600 KiB kept for the anchor,
    /// then 600 KiB a copy), before any further copy is made.
    #[test]
    fn a_large_anchor_read_through_many_aliases_is_refused_at_the_alias_past_the_cap() {
        let big = "x".repeat(600 * 1024);
        let text = format!("a: &a {big}\nb: [{}]\n", vec!["*a"; 1000].join(", "));
        assert!(text.len() < Limits::default().max_bytes);
        let started = std::time::Instant::now();
        let err = parse(&text, Limits::default()).expect_err("must be refused");
        assert!(
            err.message
                .contains("expands to more than 4194304 bytes through aliases"),
            "{err}"
        );
        // `b: [` then `*a, ` per alias: the 5th alias is at column 21.
        assert_eq!(err.pos, Pos { line: 2, col: 21 }, "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    /// Each anchor keeps a copy of its node for the aliases to come, so
    /// anchors nested 60 deep around one 100 KB scalar hold 6 MB without a
    /// single alias.
    #[test]
    fn copies_kept_for_nested_anchors_count_against_the_byte_cap() {
        let depth = 60;
        let mut text = String::new();
        for i in 0..depth {
            text.push_str(&format!("&a{i} ["));
        }
        text.push_str(&"x".repeat(100 * 1024));
        text.push_str(&"]".repeat(depth));
        let err = parse(&text, Limits::default()).expect_err("must be refused");
        assert!(err.message.contains("more than 4194304 bytes"), "{err}");
    }

    /// A local tag is text the tree holds too, copied with every alias.
    #[test]
    fn a_long_tag_read_through_aliases_counts_against_the_byte_cap() {
        let tag = "t".repeat(300 * 1024);
        let text = format!("a: &a !{tag} x\nb: [{}]\n", vec!["*a"; 100].join(", "));
        let err = parse(&text, Limits::default()).expect_err("must be refused");
        assert!(err.message.contains("bytes through aliases"), "{err}");
    }

    /// The cap leaves room for any document within `max_bytes` without
    /// aliases: its text is at most 1.5 times its size (an escaped `\L` is
    /// 2 bytes that read as 3).
    #[test]
    fn a_document_at_the_size_limit_without_aliases_is_not_refused_for_its_text() {
        let limits = Limits::default();
        let text = format!("a: \"{}\"\n", "\\L".repeat((limits.max_bytes - 8) / 2));
        let root = doc(&text);
        let read = root.get("a").and_then(Node::as_str).map_or(0, str::len);
        assert!(read > limits.max_bytes * 3 / 2 - 20, "{read}");
    }

    /// Anchors as people use them, to share a block, still read, and the
    /// alias is the anchored node.
    #[test]
    fn a_document_with_a_few_aliases_reads_as_before() {
        let text = "env: &env\n  variables:\n    A: \"1\"\nbuild: *env\ntest: *env\nlist: [&x one, *x, *x]\n";
        let root = doc(text);
        let env = root.get("env").map(Node::to_json);
        assert_eq!(root.get("build").map(Node::to_json), env);
        assert_eq!(root.get("test").map(Node::to_json), env);
        assert_eq!(
            root.get("list").map(Node::to_json),
            Some(serde_json::json!(["one", "one", "one"]))
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(200) + &"]".repeat(200);
        let err = parse(&text, Limits::default()).expect_err("must be refused");
        assert!(err.message.contains("nesting deeper"), "{err}");
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let err = parse("a: 1234567890", limits).expect_err("must be refused");
        assert!(err.message.contains("more than the 10 bytes"), "{err}");
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let err = parse("a: [1, 2\nb: 3\n", Limits::default()).expect_err("syntax error");
        assert!(err.pos.line >= 1, "{err}");
    }

    #[test]
    fn tags_are_kept_for_cloudformation() {
        let root = doc("a: !Ref Bus\nb: !Sub\n  - x\n");
        assert_eq!(root.get("a").and_then(|n| n.tag.as_deref()), Some("Ref"));
        assert_eq!(root.get("b").and_then(|n| n.tag.as_deref()), Some("Sub"));
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let root = doc("\u{feff}version: 0.2\n");
        assert_eq!(root.get("version").and_then(Node::as_str), Some("0.2"));
    }

    #[test]
    fn an_empty_sequence_item_is_placed_at_its_dash() {
        let root = doc("l:\n  - a\n  - # note\n  - b\n  -\n  -\n  - c\n");
        let Some(Value::Seq(items)) = root.get("l").map(|l| &l.value) else {
            panic!("l is not a list")
        };
        assert_eq!(items[1].pos, Pos { line: 3, col: 3 });
        assert!(items[1].is_null());
        assert_eq!(items[3].pos, Pos { line: 5, col: 3 });
        assert_eq!(items[4].pos, Pos { line: 6, col: 3 });
    }

    #[test]
    fn a_second_document_is_an_error() {
        assert!(parse("a: 1\n---\nb: 2\n", Limits::default()).is_err());
    }
}
