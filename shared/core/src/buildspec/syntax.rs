//! YAML syntax errors, explained the way CodeBuild users hit them.
//!
//! The parser says *where* it gave up, which is often a few lines after the
//! mistake, and in its own words. CodeBuild fails such a file in
//! DOWNLOAD_SOURCE with `YAML_FILE_ERROR` (reference §11). The mistakes
//! people actually make are few (reference §11 and §14): tab indentation,
//! a `- |` block whose body is not indented, a glob starting with `*` read as
//! an alias, list items that are not aligned. Each gets a message that names
//! the mistake and the line where it is; anything else keeps the parser's
//! words and position.

use crate::diagnostic::Diagnostic;
use crate::yaml::{Pos, YamlError};

/// One error diagnostic for a file that is not valid YAML, placed inside
/// the text: the explanations below count lines as Rust does (`\n`), the
/// parser as YAML does (a lone `\r` breaks a line too), and the two differ
/// on odd files.
pub(super) fn syntax_error(text: &str, err: &YamlError) -> Diagnostic {
    let mut d = explain(text, err);
    let bare = text.strip_prefix('\u{feff}').unwrap_or(text);
    let pos = crate::yaml::clamp_to_text(
        bare,
        Pos {
            line: d.line,
            col: d.col,
        },
    );
    (d.line, d.col) = (pos.line, pos.col);
    d
}

fn explain(text: &str, err: &YamlError) -> Diagnostic {
    // Not a layout mistake: the guesses below would only blur it.
    if err.message.contains("NUL character") {
        return Diagnostic::error(err.pos, "", err.message.clone());
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(line) = tab_indented_line(text, err.pos.line) {
        return Diagnostic::error(
            Pos { line, col: 1 },
            "",
            format!(
                "line {line} is indented with a tab; YAML allows only spaces for indentation \
                 (CodeBuild fails with \"found character that cannot start any token\")"
            ),
        );
    }
    if let Some((line, col)) = empty_block_scalar(text, err.pos.line) {
        return Diagnostic::error(
            Pos { line, col },
            "",
            format!(
                "the block scalar on line {line} is empty: the lines after `|` or `>` must be \
                 indented more than the line that starts it, so YAML reads them as new keys or \
                 items ({})",
                err.message
            ),
        );
    }
    let line_text = nth_line(text, err.pos.line).unwrap_or_default();
    let trimmed = line_text.trim_start();
    if err.message.contains("anchor") || err.message.contains("alias") {
        let value = trimmed.trim_start_matches('-').trim_start();
        return Diagnostic::error(
            err.pos,
            "",
            format!(
                "`{value}` starts with `*`, which YAML reads as an alias to an anchor; quote the \
                 value, e.g. '{value}' ({})",
                err.message
            ),
        );
    }
    if trimmed.starts_with('-')
        && let Some((other_line, other_col)) = previous_item_column(text, err.pos.line)
    {
        let col = line_text.len() - trimmed.len() + 1;
        if other_col != col {
            return Diagnostic::error(
                Pos {
                    line: err.pos.line,
                    col: u32::try_from(col).unwrap_or(u32::MAX),
                },
                "",
                format!(
                    "list items are not aligned: this `-` is in column {col}, the one on line \
                     {other_line} in column {other_col}; items of one list must start in the \
                     same column ({})",
                    err.message
                ),
            );
        }
    }
    let tab_note = if line_text
        .split('#')
        .next()
        .unwrap_or_default()
        .contains('\t')
    {
        " (this line contains a tab; YAML allows only spaces around its structure)"
    } else {
        ""
    };
    Diagnostic::error(
        err.pos,
        "",
        format!("invalid YAML: {}{tab_note}", err.message),
    )
}

fn nth_line(text: &str, line: u32) -> Option<&str> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    text.lines().nth(index)
}

/// The first line up to `last` whose indentation contains a tab, skipping
/// comment-only lines: tabs there are harmless (corpus 005.yml has them).
fn tab_indented_line(text: &str, last: u32) -> Option<u32> {
    let mut in_block: Option<usize> = None;
    for (index, line) in text.lines().enumerate() {
        let number = u32::try_from(index).ok()?.saturating_add(1);
        if number > last {
            break;
        }
        let body = line.trim_start_matches([' ', '\t']);
        let indent = line.get(..line.len() - body.len()).unwrap_or_default();
        let spaces = line.len() - line.trim_start_matches(' ').len();
        // Inside a block scalar, tabs after the indentation are content.
        if let Some(block_indent) = in_block {
            if body.is_empty() || spaces > block_indent {
                continue;
            }
            in_block = None;
        }
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if indent.contains('\t') {
            return Some(number);
        }
        if starts_block_scalar(body) {
            in_block = Some(spaces);
        }
    }
    None
}

/// True when a line ends with a block scalar indicator (`|`, `>-`, `|+2` …).
fn starts_block_scalar(body: &str) -> bool {
    let code = body.split(" #").next().unwrap_or(body).trim_end();
    let indicator = code.trim_end_matches(|c: char| c == '-' || c == '+' || c.is_ascii_digit());
    (indicator.ends_with('|') || indicator.ends_with('>'))
        && (indicator.len() == 1
            || indicator
                .get(..indicator.len() - 1)
                .is_some_and(|before| before.ends_with([' ', ':'])))
}

/// The last block scalar (`- |`, `key: >`) up to `last` whose next non-blank
/// line is not indented more than it: YAML then reads the block as empty
/// and the would-be body as structure (corpus 168.yml). Line and column of
/// the indicator's line.
fn empty_block_scalar(text: &str, last: u32) -> Option<(u32, u32)> {
    let mut open: Option<(u32, usize)> = None;
    let mut found = None;
    for (index, line) in text.lines().enumerate() {
        let number = u32::try_from(index).ok()?.saturating_add(1);
        if number > last {
            break;
        }
        let body = line.trim_start();
        if body.is_empty() {
            continue;
        }
        let indent = line.len() - body.len();
        if let Some((start, start_indent)) = open.take()
            && indent <= start_indent
            && !body.starts_with('#')
            && !body.starts_with('-')
            && !body.contains(": ")
        {
            found = Some((start, u32::try_from(start_indent + 1).unwrap_or(u32::MAX)));
        }
        if starts_block_scalar(body) {
            open = Some((number, indent));
        }
    }
    found
}

/// The nearest `-` item line above `line`, with its 1-based column, skipping
/// blank and comment lines.
fn previous_item_column(text: &str, line: u32) -> Option<(u32, usize)> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    let (number, previous) = text
        .lines()
        .take(index)
        .enumerate()
        .filter(|(_, l)| {
            let body = l.trim_start();
            !body.is_empty() && !body.starts_with('#')
        })
        .last()?;
    let body = previous.trim_start();
    body.starts_with('-').then(|| {
        (
            u32::try_from(number + 1).unwrap_or(u32::MAX),
            previous.len() - body.len() + 1,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn diagnose(text: &str) -> Diagnostic {
        let err = yaml::parse(text, yaml::Limits::default()).expect_err("must not parse");
        syntax_error(text, &err)
    }

    #[test]
    fn tab_indentation_names_tabs_and_the_line() {
        let d = diagnose("version: 0.2\nphases:\n\tbuild:\n    commands: [make]\n");
        assert_eq!(d.line, 3, "{d}");
        assert!(d.message.contains("tab"), "{d}");
    }

    #[test]
    fn tabs_in_comments_and_block_bodies_are_not_blamed() {
        let text = "a:\n  #\tnote\n  b: |\n    x\ty\n  c: d: e\n";
        let d = diagnose(text);
        assert!(!d.message.contains("tab"), "{d}");
    }

    #[test]
    fn an_unindented_block_body_points_at_the_block() {
        let text = "phases:\n  post_build:\n    finally:\n      - |\n      if true; then\n        echo hi\n      fi\n";
        let d = diagnose(text);
        assert_eq!(d.line, 4, "{d}");
        assert!(d.message.contains("block scalar"), "{d}");
    }

    #[test]
    fn a_glob_read_as_an_alias_says_to_quote_it() {
        let d = diagnose("artifacts:\n  files:\n    - **/out.json\n");
        assert_eq!(d.line, 3, "{d}");
        assert!(d.message.contains("quote"), "{d}");
    }

    #[test]
    fn misaligned_items_name_both_columns() {
        let text = "phases:\n  build:\n    commands:\n       - a\n      - b\n";
        let d = diagnose(text);
        assert_eq!(d.line, 5, "{d}");
        assert!(d.message.contains("not aligned"), "{d}");
    }

    #[test]
    fn other_errors_keep_the_parser_words() {
        let d = diagnose("a: [1, 2\n");
        assert!(d.message.starts_with("invalid YAML"), "{d}");
    }
}
