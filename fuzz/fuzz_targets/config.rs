//! Arbitrary text through the gantry.yaml parser and checker.
//!
//! Asserts: no panic; every diagnostic lies within the text; a refusal carries at least one error, an accepted file only
//! warnings; an accepted configuration answers repository look-ups.
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
