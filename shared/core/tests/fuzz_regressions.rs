//! Inputs the fuzzers (`scripts/fuzz`, `fuzz/`) found that broke an
//! invariant, minimised, kept as plain tests so `cargo test` guards them.

use gantry_core::buildspec;
use gantry_core::config::Config;
use gantry_core::diagnostic::Diagnostic;

/// Lines as YAML breaks them (`\r\n`, a lone `\r`, `\n`), each with its
/// length in characters.
fn lines(text: &str) -> Vec<usize> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(|l| l.chars().count())
        .collect()
}

fn assert_within(text: &str, diagnostics: &[Diagnostic]) {
    let lines = lines(text);
    assert!(
        !diagnostics.is_empty(),
        "expected a diagnostic for {text:?}"
    );
    for d in diagnostics {
        let line = d.line as usize;
        assert!(
            (1..=lines.len()).contains(&line),
            "{d} is past the {} lines of {text:?}",
            lines.len()
        );
        assert!(
            (1..=lines[line - 1] + 1).contains(&(d.col as usize)),
            "{d} is past the end of line {line} of {text:?}"
        );
    }
}

/// fuzz buildspec, crash-b1c003ef: a syntax error at the end of a file
/// without a final newline was reported one line past the last (3:1 for a
/// two-line file), because the scanner reads an implicit line break there.
#[test]
fn buildspec_syntax_error_at_end_of_file_without_final_newline() {
    for text in [
        "a: 1\nb",
        "a: 1\nb:c",
        "a: 1\nb:\"`",
        "version: 0.2\nphases:\"`.json",
    ] {
        let diagnostics = buildspec::validate(text);
        assert_within(text, &diagnostics);
    }
    let d = &buildspec::validate("a: 1\nb")[0];
    assert_eq!((d.line, d.col), (2, 2), "{d}");
}

/// The same position, through the gantry.yaml parser.
#[test]
fn config_syntax_error_at_end_of_file_without_final_newline() {
    let text = "version: 1\nrepositories";
    let diagnostics = Config::parse(text).expect_err("not valid");
    assert_within(text, &diagnostics);
}

/// fuzz buildspec, crash-d0f038fe: the YAML scanner takes a NUL for the end
/// of input, so a NUL after a `-` made an empty item on a line past the
/// end, and everything after the NUL went unchecked. A NUL is now an error
/// at its own position.
#[test]
fn buildspec_with_a_nul_is_refused_where_the_nul_is() {
    let text =
        "version: 0.2\n\nphases:\n  pre_build:\n    commands:\n      - echo a\n      -\0echo b";
    let diagnostics = buildspec::validate(text);
    assert_within(text, &diagnostics);
    assert_eq!((diagnostics[0].line, diagnostics[0].col), (7, 8));
    assert!(diagnostics[0].message.contains("NUL"), "{}", diagnostics[0]);
    // What follows a NUL is no longer silently ignored.
    let hidden = "version: 0.2\nphases:\n  build:\n    commands:\n      - make\0\n  bogus: 1\n";
    assert!(gantry_core::diagnostic::has_errors(&buildspec::validate(
        hidden
    )));
}

/// fuzz config, crash-78e097e6: the same NUL made `defaults.project` null
/// on a line past the end.
#[test]
fn config_with_a_nul_is_refused_where_the_nul_is() {
    let text = "version: 2\ndefaults:\n  project:\0\0\0\0\0\0\0.ersi.ld";
    let diagnostics = Config::parse(text).expect_err("not valid");
    assert_within(text, &diagnostics);
    assert_eq!((diagnostics[0].line, diagnostics[0].col), (3, 11));
}

/// fuzz config, crash-1210c4bd: a null value at the end of a file whose
/// last line has no line break was placed one line past the end.
#[test]
fn config_null_at_end_of_file_stays_inside_the_text() {
    let text = "version: 1\ndversion: 1\nrepositories:\n ";
    let diagnostics = Config::parse(text).expect_err("not valid");
    assert_within(text, &diagnostics);
}

/// fuzz buildspec, crash-600f6135 (the fuzzer's input, not minimised: lone
/// `\r` line breaks, U+FFFD, a NUL): the syntax explanations count lines
/// with `str::lines`, the parser as YAML does, so the explanation's column
/// fell past the end of its line.
#[test]
fn buildspec_syntax_explanation_stays_inside_the_text() {
    let bytes = include_bytes!("fuzz_regressions/buildspec-crash-600f6135");
    let text = String::from_utf8_lossy(bytes);
    let diagnostics = buildspec::validate(&text);
    let lines: Vec<usize> = yaml_lines(&text);
    for d in &diagnostics {
        let line = d.line as usize;
        assert!((1..=lines.len()).contains(&line), "{d}");
        assert!((1..=lines[line - 1] + 1).contains(&(d.col as usize)), "{d}");
    }
}

/// Line lengths in characters, a lone `\r` breaking a line as in YAML.
fn yaml_lines(text: &str) -> Vec<usize> {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .map(|l| l.chars().count())
        .collect()
}

/// fuzz config, crash-b2a49598 (found by CI's bounded run): lone `\r`s
/// before the last item. The scanner counts lines differently from YAML's
/// `\r\n` / `\r` / `\n`, and placed the null item at 10:3, where line 10
/// (by YAML's count) is empty. Node positions are now held to their line.
#[test]
fn config_null_item_after_lone_carriage_returns_stays_on_its_line() {
    let text = "version: 1\nrepositories:\n  - #n: x\r\r\n  - #name: \r";
    let diagnostics = Config::parse(text).expect_err("not valid");
    for d in &diagnostics {
        let line = d.line as usize;
        let lines: Vec<usize> = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .split('\n')
            .map(|l| l.chars().count())
            .collect();
        assert!(
            (1..=lines.len()).contains(&line),
            "{d} past the {} lines",
            lines.len()
        );
        assert!(
            (1..=lines[line - 1] + 1).contains(&(d.col as usize)),
            "{d} past the end of line {line} ({} characters)",
            lines[line - 1]
        );
    }
}

/// fuzz config, crash-41c95d4f: a scan error on a line broken by lone `\r`
/// characters was placed at column 27 of a 24-character line: the scanner
/// counts a lone `\r` differently from YAML's line breaks.
#[test]
fn config_scan_error_after_lone_carriage_returns_is_inside_its_line() {
    let text = "tArsi$n: 1  - ncccccccc!0\r\r\r\r|\r\r  z       tagqs: [\"\u{fffd}**\"]";
    let diagnostics = Config::parse(text).expect_err("not valid");
    assert_within(text, &diagnostics);
}
