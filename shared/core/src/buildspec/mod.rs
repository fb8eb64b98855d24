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
pub mod runnable;
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
    /// `env.secrets-manager` (env var name -> secret reference
    /// `secret-id[:json-key[:version-stage[:version-id]]]`), in file order;
    /// empty if absent or invalid.
    pub secrets_manager: Vec<(String, String)>,
    /// It has a primary `artifacts` section (with `files`): the build
    /// uploads them.
    pub artifacts: bool,
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
    ..yaml::Limits::DEFAULT
};

/// The secret id of an `env.secrets-manager` reference
/// `secret-id[:json-key[:version-stage[:version-id]]]`, where the id may be
/// an ARN (`arn:aws:secretsmanager:region:account:secret:name`), itself
/// full of colons.
pub fn secret_id(reference: &str) -> &str {
    let fields = if reference.starts_with("arn:") { 7 } else { 1 };
    match reference.match_indices(':').nth(fields - 1) {
        Some((at, _)) => &reference[..at],
        None => reference,
    }
}

/// The secret's name in a secret id: the id itself, or an ARN's resource
/// name (with the suffix Secrets Manager adds, when the ARN is complete).
pub fn secret_name(id: &str) -> &str {
    if id.starts_with("arn:") {
        id.splitn(7, ':').nth(6).unwrap_or_default()
    } else {
        id
    }
}

/// The digest Gantry names a buildspec by: `sha256:<hex>` of its exact bytes.
pub fn digest(text: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    crate::hex::push(&mut out, &Sha256::digest(text.as_bytes()));
    out
}

/// Validates a buildspec; diagnostics sorted by (line, col). Never panics, on any input.
pub fn validate(text: &str) -> Vec<Diagnostic> {
    analyse(text).diagnostics
}

/// The same, plus what later stages need from a valid buildspec.
pub fn analyse(text: &str) -> Analysis {
    analyse_tree(text).0
}

/// [`analyse`], and the parsed document when there is one (for
/// [`runnable`], which reads it again as a plan).
fn analyse_tree(text: &str) -> (Analysis, Option<yaml::Node>) {
    let (mut analysis, root) = match yaml::parse(text, LIMITS) {
        Err(err) => (
            Analysis {
                diagnostics: vec![syntax::syntax_error(text, &err)],
                ..Analysis::default()
            },
            None,
        ),
        Ok(None) => (
            Analysis {
                diagnostics: vec![Diagnostic::error(
                    Pos { line: 1, col: 1 },
                    "",
                    "the buildspec is empty; it needs at least `version: 0.2` and `phases`",
                )],
                ..Analysis::default()
            },
            None,
        ),
        Ok(Some(root)) => {
            let checked = check::check(text, &root);
            (
                Analysis {
                    diagnostics: checked.diagnostics,
                    parameter_store: checked.parameter_store,
                    secrets_manager: checked.secrets_manager,
                    artifacts: checked.artifacts,
                    version: checked.version,
                },
                Some(root),
            )
        }
    };
    analysis.diagnostics.sort_by_key(|d| (d.line, d.col));
    (analysis, root)
}

/// The keys of `env` through which a buildspec asks CodeBuild for secrets.
/// What a fork's build must not get from a buildspec: secret references,
/// and `git-credential-helper: yes`, which hands the source credentials
/// (a CodeConnections token to every repository it can read) to git in the
/// build, where the fork's code runs.
pub const SECRET_ENV_KEYS: &[&str] = &[
    "parameter-store",
    "secrets-manager",
    "git-credential-helper",
];

/// The buildspec with its secret references (`env.parameter-store`,
/// `env.secrets-manager`) taken out, for a build that must not have them
/// (a fork's pull request); `Ok(None)` if it has none. The result is the
/// same document written as JSON, which is YAML: what CodeBuild runs is
/// unchanged, comments and layout are not kept.
pub fn without_secrets(text: &str) -> Result<Option<String>, Diagnostic> {
    let root = match yaml::parse(text, LIMITS) {
        Ok(Some(root)) => root,
        Ok(None) => return Ok(None),
        Err(err) => return Err(syntax::syntax_error(text, &err)),
    };
    let has_refs = root
        .get("env")
        .is_some_and(|env| SECRET_ENV_KEYS.iter().any(|k| env.get(k).is_some()));
    if !has_refs {
        return Ok(None);
    }
    let mut json = root.to_json();
    if let Some(env) = json.get_mut("env").and_then(|e| e.as_object_mut()) {
        for key in SECRET_ENV_KEYS {
            env.remove(*key);
        }
    }
    let mut out = String::from(
        "# Gantry: this build is untrusted (a fork's pull request); the buildspec's secret references were removed.\n",
    );
    out.push_str(&json.to_string());
    out.push('\n');
    Ok(Some(out))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_secret_reference_gives_its_id_and_name() {
        const ARN: &str =
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:/gantry/build/npm-AbCdEf";
        for (reference, id, name) in [
            (
                "/gantry/build/npm",
                "/gantry/build/npm",
                "/gantry/build/npm",
            ),
            (
                "/gantry/build/npm:token",
                "/gantry/build/npm",
                "/gantry/build/npm",
            ),
            (
                "/gantry/build/npm:token:AWSCURRENT:",
                "/gantry/build/npm",
                "/gantry/build/npm",
            ),
            (ARN, ARN, "/gantry/build/npm-AbCdEf"),
            (&format!("{ARN}:token::v1"), ARN, "/gantry/build/npm-AbCdEf"),
            (
                "arn:aws:secretsmanager:eu-west-1",
                "arn:aws:secretsmanager:eu-west-1",
                "",
            ),
        ] {
            assert_eq!(secret_id(reference), id, "{reference}");
            assert_eq!(secret_name(secret_id(reference)), name, "{reference}");
        }
    }

    #[test]
    fn artifacts_and_secrets_manager_references_are_kept_for_later_stages() {
        let a = analyse(
            "version: 0.2\nenv:\n  secrets-manager:\n    TOKEN: team/npm:token\n    KEY: arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/key-AbCdEf\nphases:\n  build:\n    commands: [make]\nartifacts:\n  files: ['dist/**/*']\n",
        );
        assert!(a.artifacts);
        assert_eq!(
            a.secrets_manager,
            [
                ("TOKEN".to_owned(), "team/npm:token".to_owned()),
                (
                    "KEY".to_owned(),
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/key-AbCdEf"
                        .to_owned()
                )
            ]
        );
        // Secondary artifacts alone still need `files` at the top; without
        // an artifacts section nothing is uploaded.
        assert!(!analyse("version: 0.2\nphases:\n  build:\n    commands: [make]\n").artifacts);
        // An invalid reference keeps none of them: the build is refused anyway.
        let bad = analyse(
            "version: 0.2\nenv:\n  secrets-manager:\n    A: team/a\n    B: [x]\nphases:\n  build:\n    commands: [make]\n",
        );
        assert!(bad.secrets_manager.is_empty());
    }

    #[test]
    fn secret_references_are_removed_and_nothing_else() {
        let text = "version: 0.2\nenv:\n  variables:\n    A: '1'\n  git-credential-helper: yes\n  parameter-store:\n    TOKEN: /ci/token\n  secrets-manager:\n    KEY: prod/key:password\nphases:\n  build:\n    commands:\n      - echo \"$A\"\n      - make test\n";
        let stripped = without_secrets(text)
            .expect("parses")
            .expect("has references");
        assert!(!stripped.contains("/ci/token"), "{stripped}");
        assert!(!stripped.contains("prod/key"), "{stripped}");
        assert!(!stripped.contains("git-credential-helper"), "{stripped}");
        // Still a valid buildspec, with the same commands, in order.
        let analysis = analyse(&stripped);
        assert!(
            !has_errors(&analysis.diagnostics),
            "{:?}",
            analysis.diagnostics
        );
        assert!(analysis.parameter_store.is_empty());
        let json = yaml::parse(&stripped, LIMITS)
            .expect("parses")
            .expect("not empty")
            .to_json();
        assert_eq!(json["version"], serde_json::json!(0.2));
        assert_eq!(json["env"]["variables"]["A"], "1");
        assert_eq!(
            json["phases"]["build"]["commands"],
            serde_json::json!(["echo \"$A\"", "make test"])
        );
        assert_eq!(without_secrets("version: 0.2\nphases: {}\n"), Ok(None));
        // The helper alone is reason enough to rewrite.
        let helper =
            without_secrets("version: 0.2\nenv:\n  git-credential-helper: yes\nphases: {}\n")
                .expect("parses")
                .expect("rewritten");
        assert!(!helper.contains("git-credential-helper"), "{helper}");
    }

    #[test]
    fn digest_is_sha256_of_the_exact_bytes() {
        assert_eq!(
            digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(digest("version: 0.2\n"), digest("version: 0.2\r\n"));
    }
    use super::*;
    use crate::diagnostic::{Severity, has_errors};
    use proptest::prelude::*;

    const VALID: &str = "\
version: 0.2
run-as: codebuild-user
env:
  shell: bash
  variables:
    WORKERS: 4
    DEBUG: true
    NAME: \"x\"
  parameter-store:
    TOKEN: /ci/token
    USER: /ci/user
  exported-variables: [IMAGE_TAG]
  secrets-manager:
    KEY: arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci-AbCdEf:password
  git-credential-helper: yes
proxy:
  upload-artifacts: no
  logs: yes
phases:
  install:
    runtime-versions:
      nodejs: 20
      python: 3.12
    commands:
      - npm ci
  pre_build:
    on-failure: RETRY-3-.*timed out.*
    commands: [make deps]
  build:
    run-as: root
    on-failure: ABORT
    commands:
      - make
      - 'echo \"a: b\"'
    finally:
      - make clean
  post_build:
    finally:
      - echo done
reports:
  unit:
    files: ['**/*.xml']
    base-directory: out
    discard-paths: yes
    file-format: JunitXml
artifacts:
  files: ['**/*']
  name: build-$(date +%F)
  discard-paths: no
  base-directory: dist
  exclude-paths: ['**/.*']
  enable-symlinks: yes
  s3-prefix: builds
  secondary-artifacts:
    docs:
      files: [docs/**/*]
      name: docs
cache:
  key: npm-$(codebuild-hash-files package-lock.json)
  fallback-keys: [npm-]
  action: restore
  paths: ['/root/.npm/**/*']
";

    fn diags(text: &str) -> Vec<Diagnostic> {
        validate(text)
    }

    fn errors(text: &str) -> Vec<String> {
        diags(text)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect()
    }

    fn warnings(text: &str) -> Vec<String> {
        diags(text)
            .into_iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| d.to_string())
            .collect()
    }

    fn has(found: &[String], fragment: &str) -> bool {
        found.iter().any(|d| d.contains(fragment))
    }

    #[test]
    fn the_whole_grammar_validates_clean() {
        let all = diags(VALID);
        assert!(all.is_empty(), "{all:#?}");
    }

    #[test]
    fn analysis_keeps_parameter_store_in_file_order_and_the_version() {
        let analysis = analyse(VALID);
        assert_eq!(analysis.version.as_deref(), Some("0.2"));
        assert_eq!(
            analysis.parameter_store,
            vec![
                ("TOKEN".to_owned(), "/ci/token".to_owned()),
                ("USER".to_owned(), "/ci/user".to_owned())
            ]
        );
        let invalid = analyse("version: 0.2\nenv:\n  parameter-store:\n    A: /a\n    B: [x]\n");
        assert!(invalid.parameter_store.is_empty(), "{invalid:?}");
        assert_eq!(
            analyse("version: \"0.1\"\n").version.as_deref(),
            Some("0.1")
        );
    }

    #[test]
    fn a_command_read_as_a_mapping_is_an_error_at_its_line() {
        let text = "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n      - true\n      - echo foo: bar\n";
        let found = diags(text);
        let d = found
            .iter()
            .find(|d| d.severity == Severity::Error)
            .expect("an error");
        assert_eq!((d.line, d.col), (7, 9), "{d}");
        assert!(
            d.to_string().contains(
                "phases.build.commands[2]: expected a string, found a mapping — did you forget to quote a ':'?"
            ),
            "{d}"
        );
    }

    #[test]
    fn a_bare_dash_is_an_empty_command_error() {
        let text =
            "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n      -\n      - test\n";
        let found = errors(text);
        assert!(
            has(
                &found,
                "6:7: error: phases.build.commands[1]: empty command"
            ),
            "{found:?}"
        );
        let text = "version: 0.2\nphases:\n  build:\n    commands:\n      - # note\n      - make\n";
        assert!(has(&errors(text), "not a comment line"));
    }

    #[test]
    fn missing_and_unsupported_versions_are_errors() {
        assert!(has(
            &errors("phases:\n  build:\n    commands: [make]\n"),
            "missing `version`"
        ));
        assert!(has(
            &errors("version: 0.3\nphases: {}\n"),
            "unsupported version `0.3`"
        ));
        assert!(has(&errors("version: [0.2]\n"), "expected `0.2` or `0.1`"));
        assert!(errors("version: '0.2'\nphases:\n  build:\n    commands: [make]\n").is_empty());
    }

    #[test]
    fn unknown_keys_are_warnings_with_suggestions() {
        let text = "version: 0.2\nphase:\n  build:\n    commands: [make]\nartifacts:\n  files: [a]\n  discard_paths: yes\n  exclude: [b]\n";
        assert!(errors(text).is_empty(), "{:?}", errors(text));
        let found = warnings(text);
        assert!(
            has(&found, "2:1: warning: phase: unknown key `phase`"),
            "{found:?}"
        );
        assert!(has(&found, "did you mean `phases`?"), "{found:?}");
        assert!(has(&found, "did you mean `discard-paths`?"), "{found:?}");
        assert!(has(&found, "did you mean `exclude-paths`?"), "{found:?}");
    }

    #[test]
    fn a_wrong_phase_name_is_an_error() {
        let found = errors("version: 0.2\nphases:\n  POSTBUILD:\n    commands: [x]\n");
        assert!(has(&found, "Invalid buildspec phase name"), "{found:?}");
        assert!(has(&found, "did you mean `post_build`?"), "{found:?}");
    }

    #[test]
    fn phases_need_commands_but_finally_or_an_empty_commands_key_will_do() {
        let found = errors("version: 0.2\nphases:\n  build:\n    run-as: root\n");
        assert!(has(&found, "phase `build` has no `commands`"), "{found:?}");
        let fine = "version: 0.2\nphases:\n  install:\n    runtime-versions: {java: corretto17}\n  build:\n    commands:\n  post_build:\n    finally: [echo]\n";
        assert!(errors(fine).is_empty(), "{:?}", errors(fine));
        let block =
            "version: 0.2\nphases:\n  build:\n    commands: |\n      make\n      make test\n";
        assert!(diags(block).is_empty());
    }

    #[test]
    fn flags_accept_yes_no_and_true_false_only() {
        let ok = "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts:\n  files: [a]\n  discard-paths: true\n  enable-symlinks: 'no'\n";
        assert!(diags(ok).is_empty(), "{:?}", diags(ok));
        let bad = errors("version: 0.2\nartifacts:\n  files: [a]\n  discard-paths: sometimes\n");
        assert!(
            has(&bad, "artifacts.discard-paths: `sometimes` is not a flag"),
            "{bad:?}"
        );
    }

    #[test]
    fn closed_value_sets_are_checked() {
        let text = "version: 0.2\nphases:\n  build:\n    on-failure: STOP\n    commands: [x]\nreports:\n  r:\n    files: [a]\n    file-format: XML\ncache:\n  paths: [a]\n  action: both\n";
        let found = errors(text);
        assert!(
            has(&found, "`STOP` is not an on-failure action"),
            "{found:?}"
        );
        assert!(has(&found, "`XML` is not a report format"), "{found:?}");
        assert!(has(&found, "`both` is not a cache action"), "{found:?}");
    }

    #[test]
    fn required_fields_are_errors() {
        let text = "version: 0.2\nreports:\n  r:\n    base-directory: x\nartifacts:\n  name: x\nphases:\n  install:\n    runtime-versions:\n";
        let found = errors(text);
        assert!(has(&found, "a report group needs `files`"), "{found:?}");
        assert!(has(&found, "artifacts need `files`"), "{found:?}");
        assert!(has(&found, "`runtime-versions` is empty"), "{found:?}");
    }

    #[test]
    fn wrong_types_are_errors() {
        let text = "version: 0.2\nenv:\n  variables:\n    A: [1, 2]\n  shell: {a: b}\nphases:\n  build:\n    commands:\n      a: b\n";
        let found = errors(text);
        assert!(
            has(&found, "env.variables.A: expected a string, found a list"),
            "{found:?}"
        );
        assert!(
            has(&found, "env.shell: expected a string, found a mapping"),
            "{found:?}"
        );
        assert!(
            has(&found, "phases.build.commands: expected a list of commands"),
            "{found:?}"
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let found = errors("version: 0.2\nenv:\n  variables:\n    A: 1\n    A: 2\n");
        assert!(
            has(
                &found,
                "5:5: error: env.variables.A: `A` is given twice (first on line 4)"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn deprecated_misplaced_and_undocumented_keys_are_only_warnings() {
        let text = "version: 0.2\nenvironment_variables:\n  plaintext: {A: b}\nbuild-matrix:\n  static: {}\nenv:\n  compute-type: BUILD_GENERAL1_SMALL\n  build:\n    commands: [x]\n  shell: powershell\nphases:\n  build:\n    commands: [x]\n    runtime-versions: {java: 17}\nartifacts:\n  type: zip\n  files: [a]\n";
        let found = diags(text);
        assert!(!has_errors(&found), "{found:#?}");
        let found = warnings(text);
        assert!(has(&found, "version 0.1 name of `env`"), "{found:?}");
        assert!(has(&found, "belongs under `batch:`"), "{found:?}");
        assert!(
            has(&found, "`compute-type` is not an `env` key"),
            "{found:?}"
        );
        assert!(has(&found, "`build` is a phase name"), "{found:?}");
        assert!(has(&found, "works only in the install phase"), "{found:?}");
        assert!(has(&found, "deprecated"), "{found:?}");
    }

    #[test]
    fn version_01_has_its_own_names() {
        let text = "version: 0.1\nenvironment_variables:\n  plaintext:\n    A: b\nphases:\n  build:\n    commands: [x]\nartifacts:\n  type: zip\n  files: [a]\n";
        assert!(diags(text).is_empty(), "{:?}", diags(text));
        let found = warnings(
            "version: 0.1\nenv: {}\nphases:\n  build:\n    commands: [x]\n    finally: [y]\n",
        );
        assert!(has(&found, "`env` needs `version: 0.2`"), "{found:?}");
        assert!(has(&found, "`finally` needs `version: 0.2`"), "{found:?}");
    }

    #[test]
    fn batch_types_and_their_fields_are_checked() {
        let graph = "version: 0.2\nbatch:\n  fast-fail: false\n  build-graph:\n    - identifier: a\n      env:\n        compute-type: BUILD_GENERAL1_SMALL\n        privileged-mode: true\n        variables: {X: 1}\n    - identifier: b\n      depend-on: [a]\n      ignore-failure: true\n      debug-session: true\n";
        assert!(diags(graph).is_empty(), "{:?}", diags(graph));
        let bad = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      env: {compute-type: X, fleet: f}\n    - identifier: a\n      depend-on: [c]\n    - buildspec: x.yml\n  build-list:\n    - identifier: z\n";
        let found = errors(bad);
        assert!(has(&found, "not both"), "{found:?}");
        assert!(
            has(&found, "identifier `a` is used by another build"),
            "{found:?}"
        );
        assert!(has(&found, "depends on `c`"), "{found:?}");
        assert!(has(&found, "needs an `identifier`"), "{found:?}");
        assert!(has(&found, "one batch type"), "{found:?}");
        let matrix = "version: 0.2\nbatch:\n  build-matrix:\n    static:\n      ignore-failure: false\n      env: {type: LINUX_CONTAINER, privileged-mode: true}\n    dynamic:\n      buildspec: [a.yml, b.yml]\n      env:\n        image: [x, y]\n        variables:\n          N: [1, 2]\n";
        assert!(diags(matrix).is_empty(), "{:?}", diags(matrix));
        let fanout = errors("version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 0\n");
        assert!(has(&fanout, "whole number above 0"), "{fanout:?}");
        assert!(diags("version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 5\n    ignore-failure: false\n").is_empty());
        assert!(has(
            &errors("version: 0.2\nbatch:\n  fast-fail: true\n"),
            "needs one of"
        ));
    }

    #[test]
    fn syntax_errors_are_one_error_with_the_line() {
        let found = diags("version: 0.2\nphases:\n  build:\n    commands: [make\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found.iter().all(|d| d.severity == Severity::Error));
        let tabs = diags("version: 0.2\nphases:\n\tbuild:\n");
        assert_eq!(tabs.len(), 1, "{tabs:?}");
        assert_eq!(tabs.first().map(|d| d.line), Some(3));
        assert!(tabs.iter().all(|d| d.message.contains("tab")), "{tabs:?}");
    }

    #[test]
    fn bom_crlf_empty_and_odd_roots() {
        let crlf =
            "\u{feff}version: 0.2\r\nphases:\r\n  build:\r\n    commands:\r\n      - make\r\n";
        assert!(diags(crlf).is_empty(), "{:?}", diags(crlf));
        assert!(has(&errors(""), "empty"));
        assert!(has(&errors("# only a comment\n"), "empty"));
        assert!(has(&errors("- a\n- b\n"), "a buildspec is a mapping"));
        assert!(has(&errors("just text"), "a buildspec is a mapping"));
    }

    #[test]
    fn hostile_inputs_are_bounded() {
        let mut bomb = String::from("version: 0.2\na: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h'] {
            bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = name;
        }
        assert!(has(&errors(&bomb), "nodes"));
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let found = errors(&deep);
        assert!(
            has(&found, "nesting") || has(&found, "recursion limit"),
            "{found:?}"
        );
        assert_eq!(errors(&"[".repeat(10_000)).len(), 1);
        assert!(has(&errors(&"#".repeat(2 * 1024 * 1024)), "bytes"));
    }

    const REAL: &str = "version: 0.2\nenv:\n  variables:\n    A: b\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n  build:\n    commands:\n      - make\n      - |\n        echo hi\nartifacts:\n  files: ['**/*']\n";

    proptest! {
        #[test]
        fn validate_never_panics_on_arbitrary_text(text in "\\PC*") {
            let _ = validate(&text);
        }

        #[test]
        fn validate_never_panics_on_yamlish_text(text in "[ \\t\\n:\\-#|>'\"*&!{}\\[\\],a-z0-9\u{feff}\r]{0,200}") {
            let _ = validate(&text);
        }

        #[test]
        fn validate_never_panics_on_mutated_buildspecs(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, "[ \\t\\n:\\-#|>'\"*&!{}\\[\\],a-z0-9]{0,3}"), 1..8)
        ) {
            let mut text = REAL.to_owned();
            for (at, action, insert) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                match action {
                    0 => text.insert_str(i, &insert),
                    1 => { text.truncate(i); }
                    2 => {
                        let end = (i + insert.len()).min(text.len());
                        if text.is_char_boundary(end) { text.replace_range(i..end, ""); }
                    }
                    _ => text.replace_range(i..i, &insert),
                }
            }
            let found = validate(&text);
            prop_assert!(found.windows(2).all(|w| (w[0].line, w[0].col) <= (w[1].line, w[1].col)));
        }
    }
}
