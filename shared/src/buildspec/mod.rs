//! The CodeBuild buildspec validator.
//!
//! Gantry starts CodeBuild builds from a repository's `buildspec.yml`. A
//! mistake in that file otherwise surfaces minutes later as a build that
//! fails in DOWNLOAD_SOURCE with `YAML_FILE_ERROR`, one problem at a time, or
//! as a build that quietly runs something other than what was written. This
//! module reports every problem at once, before the build, with line,
//! column and a dotted path (`phases.build.commands[2]`).
//!
//! The grammar is the AWS "Build specification reference", versions 0.2 and
//! 0.1, as summarised in `shared/corpus/buildspec-reference.md`; where
//! CodeBuild accepts more than the docs show, the real buildspecs in
//! `shared/corpus/buildspecs` decide. [`schema`] holds the grammar as data,
//! [`check`] walks the tree, [`syntax`] explains YAML syntax errors.
//!
//! Reading is bounded by [`yaml::Limits`] (size, depth, alias expansion), so
//! no input costs unbounded work, and nothing here panics on any input.

mod check;
mod schema;
mod syntax;

use crate::diagnostic::Diagnostic;
use crate::yaml::{self, Pos};

/// What a buildspec check finds, and what later stages need from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Every problem found, sorted by (line, col).
    pub diagnostics: Vec<Diagnostic>,
    /// `env.parameter-store` (env var name -> SSM parameter name), in file
    /// order; empty if absent or invalid.
    pub parameter_store: Vec<(String, String)>,
    /// `version` as written ("0.2", "0.1"), if present.
    pub version: Option<String>,
}

/// The reading limits for a buildspec. Real ones are a few kilobytes
/// (the largest in the corpus is under 20 KB); 1 MiB leaves room for
/// generated files while bounding the work a hostile one costs.
const LIMITS: yaml::Limits = yaml::Limits {
    max_bytes: 1024 * 1024,
    max_depth: 64,
    max_nodes: 100_000,
};

/// Validates a buildspec; diagnostics sorted by (line, col). Never panics, on any input.
pub fn validate(text: &str) -> Vec<Diagnostic> {
    analyse(text).diagnostics
}

/// The same, plus what later stages need from a valid buildspec.
pub fn analyse(text: &str) -> Analysis {
    let mut analysis = match yaml::parse(text, LIMITS) {
        Err(err) => Analysis {
            diagnostics: vec![syntax::syntax_error(text, &err)],
            ..Analysis::default()
        },
        Ok(None) => Analysis {
            diagnostics: vec![Diagnostic::error(
                Pos { line: 1, col: 1 },
                "",
                "the buildspec is empty; it needs at least `version: 0.2` and `phases`",
            )],
            ..Analysis::default()
        },
        Ok(Some(root)) => {
            let checked = check::check(text, &root);
            Analysis {
                diagnostics: checked.diagnostics,
                parameter_store: checked.parameter_store,
                version: checked.version,
            }
        }
    };
    analysis.diagnostics.sort_by_key(|d| (d.line, d.col));
    analysis
}
