//! `gantry lint`: buildspecs and `gantry.yaml` checked locally, in
//! milliseconds, with line and column — in a pre-commit hook or CI.

use std::io::Write;
use std::path::Path;

use gantry_core::buildspec;
use gantry_core::config::Config;
use gantry_core::diagnostic::{Diagnostic, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// By file name: `gantry.yaml` / `gantry.yml` are configurations, the
    /// rest buildspecs.
    Auto,
    Buildspec,
    Config,
}

/// Exit codes: no errors, errors, a file that could not be read.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERRORS: u8 = 1;
pub const EXIT_UNREADABLE: u8 = 2;

fn is_config(path: &str) -> bool {
    matches!(
        Path::new(path).file_name().and_then(|n| n.to_str()),
        Some("gantry.yaml" | "gantry.yml")
    )
}

/// The diagnostics for one file's text.
pub fn lint_text(path: &str, text: &str, kind: Kind) -> Vec<Diagnostic> {
    let config = match kind {
        Kind::Auto => is_config(path),
        Kind::Config => true,
        Kind::Buildspec => false,
    };
    if config {
        match Config::parse(text) {
            Ok((_, warnings)) => warnings,
            Err(diagnostics) => diagnostics,
        }
    } else {
        buildspec::validate(text)
    }
}

#[derive(serde::Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    line: u32,
    col: u32,
    severity: Severity,
    path: &'a str,
    message: &'a str,
}

/// Lints `files`, writes the report to `out`, returns the exit code.
pub fn run(
    files: &[String],
    format: Format,
    kind: Kind,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut results: Vec<(&str, Vec<Diagnostic>)> = Vec::with_capacity(files.len());
    let mut unreadable = 0usize;
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                results.push((file, lint_text(file, &text, kind)));
            }
            Err(e) => {
                let _ = writeln!(err, "{file}: cannot read: {e}");
                unreadable += 1;
            }
        }
    }
    let errors: usize = results
        .iter()
        .map(|(_, d)| d.iter().filter(|d| d.severity == Severity::Error).count())
        .sum();
    let warnings: usize = results.iter().map(|(_, d)| d.len()).sum::<usize>() - errors;
    match format {
        Format::Text => {
            for (file, diagnostics) in &results {
                for d in diagnostics {
                    let _ = writeln!(out, "{file}:{d}");
                }
            }
            let _ = writeln!(
                out,
                "{} file{} checked: {errors} error{}, {warnings} warning{}{}",
                results.len(),
                if results.len() == 1 { "" } else { "s" },
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" },
                if unreadable > 0 {
                    format!(", {unreadable} unreadable")
                } else {
                    String::new()
                },
            );
        }
        Format::Json => {
            let all: Vec<JsonDiagnostic<'_>> = results
                .iter()
                .flat_map(|(file, diagnostics)| {
                    diagnostics.iter().map(move |d| JsonDiagnostic {
                        file,
                        line: d.line,
                        col: d.col,
                        severity: d.severity,
                        path: &d.path,
                        message: &d.message,
                    })
                })
                .collect();
            let _ = serde_json::to_writer_pretty(&mut *out, &all);
            let _ = writeln!(out);
        }
    }
    if unreadable > 0 {
        EXIT_UNREADABLE
    } else if errors > 0 {
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_files_are_recognised_by_name() {
        assert!(is_config("infra/gantry.yaml"));
        assert!(is_config("gantry.yml"));
        assert!(!is_config("buildspec.yml"));
        let d = lint_text(
            "gantry.yaml",
            "version: 1\nrepositories: []\nbogus: 1\n",
            Kind::Auto,
        );
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].line, d[0].col, d[0].severity),
            (3, 1, Severity::Error)
        );
    }
}
