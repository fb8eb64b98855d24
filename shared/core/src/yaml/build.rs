//! The tree builder: turns the parser's events into [`Node`]s, counting
//! nodes and bytes as it goes so that the limits hold even through aliases.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Limits, Node, Pos, Style, Value, YamlError, hold};

enum Kind {
    Seq,
    Other,
}

enum Frame {
    Seq {
        node: Node,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        node: Node,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Anchored {
    node: Node,
    nodes: usize,
    bytes: usize,
}

pub(super) struct Builder<'t> {
    /// The source, to place empty sequence items (see [`dash_of_empty_item`]).
    text: &'t str,
    limits: Limits,
    stack: Vec<Frame>,
    /// Each anchor's node, with its size in nodes and in bytes of text.
    anchors: HashMap<usize, Anchored>,
    pub(super) documents: Vec<Option<Node>>,
    nodes: usize,
    /// Bytes of text held so far (see [`Limits::max_expanded_bytes`]).
    bytes: usize,
    pub(super) error: Option<YamlError>,
    /// Each line's length in characters, lines broken as YAML breaks them.
    /// Nodes the scanner places after the implicit line break it reads at
    /// the end of input are moved back to the end of the text; and it counts
    /// a lone `\r` differently, so on such a file a column can fall past the
    /// end of our line: it is held to the line.
    line_lengths: Vec<u32>,
}

impl<'t> Builder<'t> {
    pub(super) fn new(text: &'t str, limits: Limits) -> Self {
        Builder {
            text,
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            documents: Vec::new(),
            nodes: 0,
            bytes: 0,
            error: None,
            line_lengths: super::line_lengths(text),
        }
    }
}

impl Builder<'_> {
    /// `pos` held inside the text (see [`hold`]).
    fn inside(&self, pos: Pos) -> Pos {
        hold(&self.line_lengths, pos)
    }

    fn fail(&mut self, pos: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, message });
        }
    }

    fn count(&mut self, pos: Pos, n: usize) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            self.fail(
                pos,
                format!(
                    "document expands to more than {} nodes (aliases included)",
                    self.limits.max_nodes
                ),
            );
            return false;
        }
        true
    }

    /// Counts `n` more bytes of text held; `through` says what holds them,
    /// for the message when that is too many.
    fn count_bytes(&mut self, pos: Pos, n: usize, through: &str) -> bool {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.limits.max_expanded_bytes {
            self.fail(
                pos,
                format!(
                    "document expands to more than {} bytes {through}",
                    self.limits.max_expanded_bytes
                ),
            );
            return false;
        }
        true
    }

    /// Adds `node` to the tree; with an `anchor`, also keeps a copy of it
    /// for the aliases to come, its `size` in nodes, and its text counted
    /// before the copy is made.
    fn push_node(&mut self, node: Node, anchor: usize, size: usize) {
        if anchor != 0 {
            let bytes = node_bytes(&node);
            if !self.count_bytes(
                node.pos,
                bytes,
                "of text (each anchored node is kept twice, for its aliases)",
            ) {
                return;
            }
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    nodes: size,
                    bytes,
                },
            );
        }
        match self.stack.last_mut() {
            None => self.documents.push(Some(node)),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

/// Where the `-` of an empty sequence item (`-` alone, or `- # comment`) is.
///
/// The parser marks an empty item at the *next* token, often the following
/// item's line, but a person (and CodeBuild's error) points at the bare dash.
/// Finds the last line before the marked one, not before the sequence's
/// first item, whose text is only a dash at the sequence's column
/// and maybe a comment. Runs only for empty items, which are rare.
fn dash_of_empty_item(text: &str, seq: Pos, marked: Pos) -> Pos {
    let column = usize::try_from(seq.col.saturating_sub(1)).unwrap_or(usize::MAX);
    let mut found = None;
    for (index, line) in text.lines().enumerate() {
        let number = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
        if number >= marked.line {
            break;
        }
        if number < seq.line {
            continue;
        }
        let Some(rest) = line.get(column..) else {
            continue;
        };
        let indent_is_blank = line.get(..column).is_some_and(|i| i.trim().is_empty());
        if let Some(after) = rest.strip_prefix('-')
            && indent_is_blank
        {
            let after = after.trim_start();
            if after.is_empty() || after.starts_with('#') {
                found = Some(Pos {
                    line: number,
                    col: seq.col,
                });
            }
        }
    }
    found.unwrap_or(marked)
}

fn tag_name(tag: Option<yaml_rust2::parser::Tag>) -> Option<String> {
    let tag = tag?;
    if tag.handle == "!" {
        Some(tag.suffix)
    } else {
        None
    }
}

/// The bytes of text `node` holds: scalars, keys included, and tags.
fn node_bytes(node: &Node) -> usize {
    let tag = node.tag.as_ref().map_or(0, String::len);
    tag + match &node.value {
        Value::Null => 0,
        Value::Scalar { text, tag, .. } => text.len() + tag.as_ref().map_or(0, String::len),
        Value::Seq(items) => items.iter().map(node_bytes).sum::<usize>(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| node_bytes(k) + node_bytes(v))
            .sum::<usize>(),
    }
}

fn node_size(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(node_size).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| node_size(k) + node_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = self.inside(Pos::from_marker(&mark));
        let event_kind = match &event {
            Event::SequenceStart(..) => Kind::Seq,
            _ => Kind::Other,
        };
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if !self.count(pos, 1) {
                    return;
                }
                let tag = tag_name(tag);
                let mut pos = pos;
                if style == TScalarStyle::Plain
                    && text.is_empty()
                    && let Some(Frame::Seq { node, .. }) = self.stack.last()
                {
                    pos = self.inside(dash_of_empty_item(self.text, node.pos, pos));
                }
                let value = if style == TScalarStyle::Plain
                    && tag.is_none()
                    && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    let held = text.len() + 2 * tag.as_ref().map_or(0, String::len);
                    if !self.count_bytes(pos, held, "of text") {
                        return;
                    }
                    let style = match style {
                        TScalarStyle::Plain => Style::Plain,
                        TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => Style::Quoted,
                        TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
                    };
                    Value::Scalar {
                        text,
                        style,
                        tag: tag.clone(),
                    }
                };
                self.push_node(Node { pos, value, tag }, anchor, 1);
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                let is_seq = matches!(event_kind, Kind::Seq);
                if !self.count(pos, 1) {
                    return;
                }
                if self.stack.len() >= self.limits.max_depth {
                    self.fail(
                        pos,
                        format!("nesting deeper than {} levels", self.limits.max_depth),
                    );
                    return;
                }
                let tag = tag_name(tag);
                if !self.count_bytes(pos, tag.as_ref().map_or(0, String::len), "of text") {
                    return;
                }
                let node = Node {
                    pos,
                    value: Value::Null,
                    tag,
                };
                let frame = if is_seq {
                    Frame::Seq {
                        node,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        node,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    mut node,
                    anchor,
                    items,
                }) => {
                    node.value = Value::Seq(items);
                    let size = if anchor != 0 { node_size(&node) } else { 0 };
                    self.push_node(node, anchor, size);
                }
                Some(Frame::Map {
                    mut node,
                    anchor,
                    entries,
                    ..
                }) => {
                    // The parser marks a block mapping's start at its first
                    // `:`; a person looks for the first key.
                    if let Some((first, _)) = entries.first() {
                        node.pos = node.pos.min(first.pos);
                    }
                    node.value = Value::Map(entries);
                    let size = if anchor != 0 { node_size(&node) } else { 0 };
                    self.push_node(node, anchor, size);
                }
                None => self.fail(pos, "unbalanced collection end".into()),
            },
            Event::Alias(id) => {
                // Counted before the copy is made: refusing after it would
                // already have cost the memory.
                let Some(&Anchored { nodes, bytes, .. }) = self.anchors.get(&id) else {
                    self.fail(pos, "alias refers to an unknown anchor".into());
                    return;
                };
                if !self.count(pos, nodes) || !self.count_bytes(pos, bytes, "through aliases") {
                    return;
                }
                if let Some(node) = self.anchors.get(&id).map(|a| a.node.clone()) {
                    self.push_node(node, 0, nodes);
                }
            }
            Event::DocumentStart
            | Event::DocumentEnd
            | Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd => {}
        }
    }
}
