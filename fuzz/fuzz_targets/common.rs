//! What every text target checks about the diagnostics it gets back.

use gantry_core::diagnostic::Diagnostic;

/// The length in characters of each line of `text`, split the way YAML
/// breaks lines (`\r\n`, `\r`, `\n`). A diagnostic may point one past the
/// end of a line, or at the line after a final line break (end of input).
fn line_lengths(text: &str) -> Vec<usize> {
    let mut lines = vec![0usize];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(0);
            }
            '\n' => lines.push(0),
            _ => *lines.last_mut().expect("one line at least") += 1,
        }
    }
    lines
}

/// Every diagnostic lies within `text` (1-based) and says something.
pub fn check_positions(what: &str, text: &str, diagnostics: &[Diagnostic]) {
    let lines = line_lengths(text);
    for d in diagnostics {
        let line = usize::try_from(d.line).unwrap_or(usize::MAX);
        let col = usize::try_from(d.col).unwrap_or(usize::MAX);
        assert!(
            (1..=lines.len()).contains(&line),
            "{what}: diagnostic on line {line}, the text has {} lines: {d}",
            lines.len()
        );
        let len = lines[line - 1];
        assert!(
            (1..=len + 1).contains(&col),
            "{what}: diagnostic in column {col}, line {line} has {len} characters: {d}"
        );
        assert!(!d.message.trim().is_empty(), "{what}: empty message: {d:?}");
    }
}
