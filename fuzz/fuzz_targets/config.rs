//! Arbitrary text through the gantry.yaml parser and checker.
//!
//! Asserts: no panic; every diagnostic lies within the text; a refusal carries at least one error, an accepted file only
//! warnings; an accepted configuration answers repository look-ups, and every list of globs it accepted compiles when
//! first matched (lists compile on first use: a list the parse accepted must not fail there).
#![no_main]

use gantry_core::config::Config;
use gantry_core::diagnostic::{Severity, has_errors};
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text) {
        Ok((config, warnings)) => {
            common::check_positions("config", &text, &warnings);
            assert!(
                warnings.iter().all(|d| d.severity == Severity::Warning),
                "accepted with errors: {warnings:?}"
            );
            for name in ["octo-org/widgets", "Codertocat/Hello-World", "", "a/b/c"] {
                if let Some(rules) = config.repository(name) {
                    assert!(!rules.project.is_empty(), "empty project for {name}");
                }
            }
            for rules in &config.repositories {
                let (push, pr) = (&rules.push, &rules.pull_request);
                let lists = [
                    push.branches.as_ref(),
                    pr.branches.as_ref(),
                    rules.paths.as_ref(),
                ]
                .into_iter()
                .flatten()
                .chain([
                    &push.branches_ignore,
                    &push.tags,
                    &push.tags_ignore,
                    &pr.branches_ignore,
                ])
                .chain([&rules.paths_ignore])
                .chain(
                    rules
                        .builds
                        .iter()
                        .flat_map(|m| m.paths.iter().chain(&m.paths_ignore)),
                )
                .chain(
                    rules
                        .notifications
                        .iter()
                        .filter_map(|r| r.branches.as_ref()),
                );
                for list in lists {
                    list.is_match("src/main.rs");
                }
            }
        }
        Err(diagnostics) => {
            common::check_positions("config", &text, &diagnostics);
            assert!(
                has_errors(&diagnostics),
                "refused without an error: {diagnostics:?}"
            );
        }
    }
});
