//! Reading a schema out of a [`Node`] tree: the one reader behind both
//! documents people write for Gantry, `gantry.yaml` and the buildspec.
//!
//! Both need the same things: a mapping's entries with string keys and no
//! key given twice, strings, a wrong type said in words, an unknown key
//! reported with the known key it probably meant, and a dotted path
//! (`phases.build.commands[2]`) for every diagnostic. They differ in one
//! policy, [`UnknownKeys`]: Gantry refuses a `gantry.yaml` key it does not
//! know (the file would mean something other than what is written), while
//! CodeBuild ignores an unknown buildspec key and builds anyway, so there it
//! is a warning that says what CodeBuild does with it.

use std::fmt;

use super::{Node, Pos, Value};
use crate::diagnostic::{Diagnostic, Severity, suggestion};

/// Where a node is, as a chain of borrowed segments; rendered
/// (`phases.build.commands[2]`) only for a diagnostic.
#[derive(Clone, Copy, Debug)]
pub enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// What a key the schema does not know (or a value left empty) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownKeys {
    /// An error that lists the known keys: the file would not do what it
    /// says (`gantry.yaml`).
    Error,
    /// A warning that says who ignores it: the file still works, minus
    /// what was misspelt (a buildspec, which `ignored_by` CodeBuild).
    Warning { ignored_by: &'static str },
}

/// A mapping's entries whose keys are strings, with the key node kept for
/// its position.
pub type Entries<'n> = Vec<(&'n Node, &'n str, &'n Node)>;

/// Collects diagnostics while a document is read.
pub struct Reader {
    pub diagnostics: Vec<Diagnostic>,
    unknown: UnknownKeys,
}

impl Reader {
    pub fn new(unknown: UnknownKeys) -> Self {
        Reader {
            diagnostics: Vec::new(),
            unknown,
        }
    }

    pub fn error(&mut self, pos: Pos, path: &Path<'_>, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(pos, path.to_string(), message));
    }

    pub fn warning(&mut self, pos: Pos, path: &Path<'_>, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::warning(pos, path.to_string(), message));
    }

    /// How many errors so far.
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// "expected X, found Y", with the hint that explains most mappings
    /// where a string belongs: an unquoted `: `.
    pub fn wrong_type(&mut self, node: &Node, path: &Path<'_>, expected: &str) {
        let hint = if matches!(node.value, Value::Map(_)) && expected.contains("string") {
            " — did you forget to quote a ':'?"
        } else {
            ""
        };
        self.error(
            node.pos,
            path,
            format!("expected {expected}, found {}{hint}", node.kind()),
        );
    }

    /// A mapping's string-keyed entries. Reports a node that is not a
    /// mapping (null is left to the caller: `None`, nothing reported), keys
    /// that are not strings, and duplicate keys: YAML forbids them and
    /// parsers disagree on which value wins.
    pub fn mapping<'n>(&mut self, node: &'n Node, path: &Path<'_>) -> Option<Entries<'n>> {
        let entries = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => return None,
            _ => {
                self.wrong_type(node, path, "a mapping");
                return None;
            }
        };
        let mut out: Entries<'n> = Vec::with_capacity(entries.len());
        for (key_node, value) in entries {
            let Some(key) = key_node.as_str() else {
                self.error(
                    key_node.pos,
                    path,
                    format!("a key must be a string, found {}", key_node.kind()),
                );
                continue;
            };
            if let Some((first, _, _)) = out.iter().find(|(_, seen, _)| *seen == key) {
                let first_line = first.pos.line;
                self.error(
                    key_node.pos,
                    &path.key(key),
                    format!(
                        "`{key}` is given twice (first on line {first_line}); YAML requires \
                         unique keys and parsers disagree on which value wins"
                    ),
                );
                continue;
            }
            out.push((key_node, key, value));
        }
        Some(out)
    }

    /// A mapping that must be there (null is a wrong type too), with every
    /// key outside `known` reported as [`Reader::unknown`] and left out.
    pub fn known<'n>(&mut self, node: &'n Node, path: &Path<'_>, known: &[&str]) -> Entries<'n> {
        if matches!(node.value, Value::Null) {
            self.wrong_type(node, path, "a mapping");
            return Vec::new();
        }
        let mut entries = self.mapping(node, path).unwrap_or_default();
        entries.retain(|(key_node, key, _)| {
            let is_known = known.contains(key);
            if !is_known {
                self.unknown(key_node, key, path, known);
            }
            is_known
        });
        entries
    }

    /// A key the section at `path` does not know, with the known key it
    /// probably meant.
    pub fn unknown(&mut self, key_node: &Node, key: &str, path: &Path<'_>, known: &[&str]) {
        let section = match path {
            Path::Root => "the top level".to_owned(),
            _ => format!("`{path}`"),
        };
        let hint = near_miss(key, known)
            .map(|k| format!(" — did you mean `{k}`?"))
            .unwrap_or_default();
        let here = path.key(key);
        match self.unknown {
            UnknownKeys::Error => self.error(
                key_node.pos,
                &here,
                format!(
                    "unknown key `{key}` in {section}{hint} (known: {})",
                    known.join(", ")
                ),
            ),
            UnknownKeys::Warning { ignored_by } => self.warning(
                key_node.pos,
                &here,
                format!("unknown key `{key}` in {section}; {ignored_by} ignores it{hint}"),
            ),
        }
    }

    /// A key the schema knows better than "unknown": the caller's message,
    /// with the severity of an unknown key.
    pub fn misplaced(&mut self, key_node: &Node, key: &str, path: &Path<'_>, message: String) {
        let here = path.key(key);
        match self.unknown {
            UnknownKeys::Error => self.error(key_node.pos, &here, message),
            UnknownKeys::Warning { .. } => self.warning(key_node.pos, &here, message),
        }
    }

    /// A string (any scalar: YAML has no other kind of text). Null is
    /// reported by the policy: an error, or a warning that it is ignored.
    pub fn string<'n>(&mut self, node: &'n Node, path: &Path<'_>) -> Option<&'n str> {
        match &node.value {
            Value::Scalar { text, .. } => Some(text),
            Value::Null => {
                match self.unknown {
                    UnknownKeys::Error => self.wrong_type(node, path, "a string"),
                    UnknownKeys::Warning { ignored_by } => self.warning(
                        node.pos,
                        path,
                        format!("has no value; {ignored_by} ignores it"),
                    ),
                }
                None
            }
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }
}

/// The known key a misspelt one probably meant: the same key up to case and
/// `-`/`_` (`discard_paths`, `POSTBUILD`, `pull_request`), a key it is the
/// first word of (`exclude` for `exclude-paths`), or one a couple of edits
/// away. Very short keys get no edit-distance guess: everything is close to
/// them.
pub fn near_miss<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let squashed = squash(key);
    if let Some(k) = known.iter().find(|k| squash(k) == squashed) {
        return Some(k);
    }
    if let Some(k) = known.iter().find(|k| {
        k.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('-'))
    }) {
        return Some(k);
    }
    if key.chars().count() < 4 {
        return None;
    }
    suggestion(key, known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Limits, parse};

    fn read(text: &str, policy: UnknownKeys, known: &[&str]) -> Vec<String> {
        let root = parse(text, Limits::default())
            .expect("parses")
            .expect("a document");
        let mut reader = Reader::new(policy);
        let entries = reader.known(&root, &Path::Root, known);
        for (_, key, value) in entries {
            reader.string(value, &Path::Root.key(key));
        }
        reader.diagnostics.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_unknown_key_follows_the_documents_policy() {
        let text = "nmae: a\nname: b\n";
        let config = read(text, UnknownKeys::Error, &["name"]);
        assert_eq!(
            config,
            [
                "1:1: error: nmae: unknown key `nmae` in the top level — did you mean `name`? (known: name)"
            ]
        );
        let buildspec = read(
            text,
            UnknownKeys::Warning {
                ignored_by: "CodeBuild",
            },
            &["name"],
        );
        assert_eq!(
            buildspec,
            [
                "1:1: warning: nmae: unknown key `nmae` in the top level; CodeBuild ignores it — did you mean `name`?"
            ]
        );
    }

    #[test]
    fn a_key_given_twice_is_an_error_under_either_policy() {
        for policy in [
            UnknownKeys::Error,
            UnknownKeys::Warning {
                ignored_by: "CodeBuild",
            },
        ] {
            let found = read("name: a\nname: b\n", policy, &["name"]);
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(
                found[0].starts_with("2:1: error: name: `name` is given twice (first on line 1)"),
                "{found:?}"
            );
        }
    }

    #[test]
    fn an_empty_value_is_an_error_or_ignored() {
        let config = read("name:\n", UnknownKeys::Error, &["name"]);
        assert_eq!(
            config,
            ["2:1: error: name: expected a string, found nothing (null)"]
        );
        let buildspec = read(
            "name:\n",
            UnknownKeys::Warning {
                ignored_by: "CodeBuild",
            },
            &["name"],
        );
        assert_eq!(
            buildspec,
            ["2:1: warning: name: has no value; CodeBuild ignores it"]
        );
    }

    #[test]
    fn a_path_reads_as_written() {
        let root = Path::Root;
        let phases = root.key("phases");
        let build = phases.key("build");
        let commands = build.key("commands");
        assert_eq!(commands.index(2).to_string(), "phases.build.commands[2]");
    }
}
