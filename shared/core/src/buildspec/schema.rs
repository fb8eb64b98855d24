//! The buildspec grammar as data: which keys each section knows, and the
//! closed sets of values CodeBuild accepts.
//!
//! Source: `shared/corpus/buildspec-reference.md` (the "Build specification
//! reference" of 2026 against the archived 2022 doc source). The section
//! numbers below (§N) refer to that file.

/// Top-level keys of version 0.2 (§2).
pub(super) const TOP_KEYS: &[&str] = &[
    "version",
    "run-as",
    "env",
    "proxy",
    "batch",
    "phases",
    "reports",
    "artifacts",
    "cache",
];

/// Top-level keys of version 0.1: `env` was `environment_variables`, and
/// `run-as`, `proxy`, `batch` and `reports` did not exist yet (§9).
pub(super) const TOP_KEYS_V01: &[&str] = &[
    "version",
    "environment_variables",
    "phases",
    "artifacts",
    "cache",
];

/// `env` (§3).
pub(super) const ENV_KEYS: &[&str] = &[
    "shell",
    "variables",
    "parameter-store",
    "exported-variables",
    "secrets-manager",
    "git-credential-helper",
];

/// `environment_variables` of version 0.1: `plaintext` became `variables` (§9).
pub(super) const ENV_KEYS_V01: &[&str] = &["plaintext"];

/// `env.shell` values the reference documents (§3). `powershell` (without
/// `.exe`) is not documented but real Windows buildspecs use it and run
/// (corpus 035.yml, 143.yml), so it is accepted too.
pub(super) const SHELLS: &[&str] = &[
    "bash",
    "/bin/sh",
    "sh",
    "powershell.exe",
    "powershell",
    "cmd.exe",
    "pwsh",
];

/// `proxy` (§2).
pub(super) const PROXY_KEYS: &[&str] = &["upload-artifacts", "logs"];

/// The only phase names; anything else is CodeBuild's hard error `Invalid
/// buildspec phase name` (§4).
pub(super) const PHASES: &[&str] = &["install", "pre_build", "build", "post_build"];

/// Keys of a phase; `runtime-versions` only counts in `install` (§4).
pub(super) const PHASE_KEYS: &[&str] = &[
    "run-as",
    "on-failure",
    "runtime-versions",
    "commands",
    "finally",
];

/// Keys of a phase in version 0.1, which had only commands (§9).
pub(super) const PHASE_KEYS_V01: &[&str] = &["commands"];

/// Runtime names CodeBuild images have offered (§4). Which ones an image
/// actually has depends on the image, so an unknown name is only a warning.
pub(super) const RUNTIMES: &[&str] = &[
    "android", "docker", "dotnet", "golang", "java", "nodejs", "php", "python", "ruby",
];

/// A report group's keys (§6).
pub(super) const REPORT_KEYS: &[&str] =
    &["files", "base-directory", "discard-paths", "file-format"];

/// `reports.*.file-format`, compared case-insensitively (§6).
pub(super) const FILE_FORMATS: &[&str] = &[
    "CUCUMBERJSON",
    "JUNITXML",
    "NUNITXML",
    "NUNIT3XML",
    "TESTNGXML",
    "VISUALSTUDIOTRX",
    "CLOVERXML",
    "COBERTURAXML",
    "JACOCOXML",
    "SIMPLECOV",
];

/// CodeBuild's quota of report groups per project (§6).
pub(super) const MAX_REPORT_GROUPS: usize = 5;

/// `artifacts` (§7).
pub(super) const ARTIFACT_KEYS: &[&str] = &[
    "files",
    "name",
    "discard-paths",
    "base-directory",
    "exclude-paths",
    "enable-symlinks",
    "s3-prefix",
    "secondary-artifacts",
];

/// One `artifacts.secondary-artifacts` entry: the same keys, not nested (§7).
pub(super) const SECONDARY_ARTIFACT_KEYS: &[&str] = &[
    "files",
    "name",
    "discard-paths",
    "base-directory",
    "exclude-paths",
    "enable-symlinks",
    "s3-prefix",
];

/// `artifacts` of version 0.1, where `type` was still meaningful (§9).
pub(super) const ARTIFACT_KEYS_V01: &[&str] = &["files", "discard-paths", "base-directory", "type"];

/// `cache` (§8).
pub(super) const CACHE_KEYS: &[&str] = &["key", "fallback-keys", "action", "paths"];

/// `cache.action` (§8).
pub(super) const CACHE_ACTIONS: &[&str] = &["restore", "save"];

/// At most this many `cache.fallback-keys` are used (§8).
pub(super) const MAX_FALLBACK_KEYS: usize = 5;

/// `batch` (§5).
pub(super) const BATCH_KEYS: &[&str] = &[
    "fast-fail",
    "build-graph",
    "build-list",
    "build-matrix",
    "build-fanout",
];

/// The batch types, of which a buildspec uses exactly one (§5).
pub(super) const BATCH_TYPES: &[&str] =
    &["build-graph", "build-list", "build-matrix", "build-fanout"];

/// One task of `build-graph` (`depend-on` is graph-only) or `build-list` (§5).
pub(super) const TASK_KEYS: &[&str] = &[
    "identifier",
    "buildspec",
    "debug-session",
    "depend-on",
    "env",
    "ignore-failure",
];

/// A task's `env` overrides (§5).
pub(super) const TASK_ENV_KEYS: &[&str] = &[
    "compute-type",
    "fleet",
    "image",
    "privileged-mode",
    "type",
    "variables",
];

/// `build-matrix` (§5).
pub(super) const MATRIX_KEYS: &[&str] = &["static", "dynamic"];

/// `build-matrix.static` (§5).
pub(super) const MATRIX_STATIC_KEYS: &[&str] = &["ignore-failure", "env", "debug-session"];

/// `build-matrix.dynamic` (§5).
pub(super) const MATRIX_DYNAMIC_KEYS: &[&str] = &["buildspec", "env"];

/// `build-matrix.dynamic.env`: every value is a list of alternatives (§5).
pub(super) const MATRIX_DYNAMIC_ENV_KEYS: &[&str] =
    &["compute-type", "fleet", "image", "variables"];

/// `build-fanout` (§5).
pub(super) const FANOUT_KEYS: &[&str] = &["parallelism", "ignore-failure"];

/// The most retries `on-failure: RETRY-<count>` allows (§4).
pub(super) const MAX_RETRIES: u32 = 100;

/// A yes/no flag as a YAML 1.1 parser (CodeBuild's agent) reads it. The
/// reference (§10) shows `yes|no` for buildspec flags and `true|false` for
/// batch flags and asks to accept both; quoted spellings are accepted too
/// because CodeBuild reads these fields as strings.
pub(super) fn flag(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "y" | "Y" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "no" | "No" | "NO" | "n" | "N" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// What is wrong with an `on-failure` value, if anything (§4).
///
/// `ABORT`, `CONTINUE`, `RETRY`, `RETRY-<count>`, `RETRY-<regex>` and
/// `RETRY-<count>-<regex>`. The docs' own examples mix case
/// (`Retry-3-.*connection timed out.*`), so the words are matched without
/// case. The regex may itself start with digits or contain `-`, so a count is
/// read only when the digits are followed by `-` or the end of the value.
pub(super) fn on_failure_problem(value: &str) -> Option<String> {
    if value.eq_ignore_ascii_case("ABORT") || value.eq_ignore_ascii_case("CONTINUE") {
        return None;
    }
    let Some(word) = value.get(..5) else {
        return Some(on_failure_expected(value));
    };
    if !word.eq_ignore_ascii_case("RETRY") {
        return Some(on_failure_expected(value));
    }
    let rest = value.get(5..).unwrap_or_default();
    if rest.is_empty() {
        return None;
    }
    let Some(rest) = rest.strip_prefix('-') else {
        return Some(on_failure_expected(value));
    };
    if rest.is_empty() {
        return Some(format!(
            "`{value}` needs a retry count or an error regex after `RETRY-`"
        ));
    }
    let (head, tail) = rest
        .split_once('-')
        .map_or((rest, None), |(h, t)| (h, Some(t)));
    if !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit()) {
        let count = head.parse::<u32>().unwrap_or(u32::MAX);
        if count > MAX_RETRIES {
            return Some(format!(
                "retry count {head} is out of range: CodeBuild allows 0 to {MAX_RETRIES} retries"
            ));
        }
        if tail == Some("") {
            return Some(format!(
                "`{value}` has an empty error regex after the count"
            ));
        }
    }
    None
}

fn on_failure_expected(value: &str) -> String {
    format!(
        "`{value}` is not an on-failure action: expected ABORT, CONTINUE, RETRY, RETRY-<count>, \
         RETRY-<regex> or RETRY-<count>-<regex>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no_and_true_false_are_both_flags() {
        for yes in ["yes", "Yes", "true", "TRUE", "on"] {
            assert_eq!(flag(yes), Some(true), "{yes}");
        }
        for no in ["no", "NO", "false", "False", "off"] {
            assert_eq!(flag(no), Some(false), "{no}");
        }
        assert_eq!(flag("maybe"), None);
        assert_eq!(flag("1"), None);
    }

    #[test]
    fn on_failure_accepts_every_documented_form() {
        for ok in [
            "ABORT",
            "CONTINUE",
            "abort",
            "RETRY",
            "RETRY-4",
            "RETRY-0",
            "RETRY-100",
            "RETRY-invalid+",
            "RETRY-8-invalid+",
            "Retry-3-.*connection timed out.*",
            "RETRY-2024x",
        ] {
            assert_eq!(on_failure_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn on_failure_rejects_other_words_and_bad_counts() {
        let bad = on_failure_problem("STOP").unwrap_or_default();
        assert!(bad.contains("expected ABORT, CONTINUE"), "{bad}");
        let range = on_failure_problem("RETRY-101").unwrap_or_default();
        assert!(range.contains("0 to 100"), "{range}");
        assert!(on_failure_problem("RETRY-").is_some());
        assert!(on_failure_problem("RETRYING").is_some());
        assert!(on_failure_problem("RETRY-3-").is_some());
        assert!(on_failure_problem("RE").is_some());
    }
}
