//! Arbitrary text through the buildspec validator.
//!
//! Asserts: no panic; every diagnostic lies within the text and they come
//! sorted (as `analyse` documents); removing the secret references from a buildspec leaves no
//! secret references and introduces no errors.
#![no_main]

use gantry_core::buildspec::{analyse, without_secrets};
use gantry_core::diagnostic::has_errors;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let analysis = analyse(&text);
    common::check_positions("buildspec", &text, &analysis.diagnostics);
    // Documented by `analyse` (the config parser promises no order).
    assert!(
        analysis.diagnostics.is_sorted_by_key(|d| (d.line, d.col)),
        "diagnostics not sorted by position: {:?}",
        analysis.diagnostics
    );

    match without_secrets(&text) {
        Ok(None) | Err(_) => {}
        Ok(Some(stripped)) => {
            let again = analyse(&stripped);
            assert!(
                again.parameter_store.is_empty(),
                "secret references left after stripping: {stripped}"
            );
            assert!(
                without_secrets(&stripped).ok() == Some(None),
                "stripping twice finds more to strip: {stripped}"
            );
            if !has_errors(&analysis.diagnostics) {
                assert!(
                    !has_errors(&again.diagnostics),
                    "a valid buildspec became invalid without its secrets:\n{stripped}\n{:?}",
                    again.diagnostics
                );
            }
        }
    }
});
