//! What a valid buildspec asks a build to run: the phases in CodeBuild's
//! order with their commands, `finally` blocks and `on-failure`, the
//! environment, and what the build exports. Read only after
//! [`super::analyse`] found no error, so every shape here is one CodeBuild
//! accepts; the local executor (`gantry build`, `gantry dev`) runs it.

use super::analyse_tree;
use crate::diagnostic::{Diagnostic, Severity};
use crate::yaml::{Node, Value};

/// A buildspec's `version`: 0.1 runs each command in its own shell, 0.2
/// runs the whole build in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V01,
    V02,
}

/// The four phases a buildspec may have, in the order CodeBuild runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseName {
    Install,
    PreBuild,
    Build,
    PostBuild,
}

impl PhaseName {
    pub const ALL: [PhaseName; 4] = [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ];

    /// The key in the buildspec.
    pub fn key(self) -> &'static str {
        match self {
            PhaseName::Install => "install",
            PhaseName::PreBuild => "pre_build",
            PhaseName::Build => "build",
            PhaseName::PostBuild => "post_build",
        }
    }

    /// CodeBuild's name of the phase (`phaseType`, `completed-phase`).
    pub fn codebuild_name(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
        }
    }

    /// Where a build goes when this phase fails and no `on-failure` says
    /// otherwise (CodeBuild's "Build phase transitions"): a failed install
    /// or pre_build ends the build; a failed build still runs post_build.
    pub fn failure_skips_to_end(self) -> bool {
        matches!(self, PhaseName::Install | PhaseName::PreBuild)
    }
}

/// A phase's `on-failure`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// No `on-failure`: CodeBuild's phase transitions.
    #[default]
    Transitions,
    /// `ABORT`: the build ends here.
    Abort,
    /// `CONTINUE`: the next phase runs; the build still fails.
    Continue,
    /// `RETRY…`: the phase runs again, up to `attempts` more times; the
    /// regex of `RETRY-<regex>` is kept, `pattern`.
    Retry {
        attempts: u32,
        pattern: Option<String>,
    },
}

impl OnFailure {
    fn parse(text: &str) -> OnFailure {
        match text {
            "ABORT" => return OnFailure::Abort,
            "CONTINUE" => return OnFailure::Continue,
            _ => {}
        }
        let upper = text.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("RETRY").map(|_| &text[5..]) else {
            return OnFailure::Transitions;
        };
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        // `RETRY-<count>`, `RETRY-<count>-<regex>`, `RETRY-<regex>`: a
        // count only when digits are followed by `-` or the end.
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (count, pattern) = match rest.get(digits..) {
            Some(after) if digits > 0 && (after.is_empty() || after.starts_with('-')) => {
                let count = rest[..digits].parse().unwrap_or(3);
                let pattern = after.strip_prefix('-').filter(|p| !p.is_empty());
                (count, pattern)
            }
            _ => (3, Some(rest).filter(|p| !p.is_empty())),
        };
        OnFailure::Retry {
            attempts: count,
            pattern: pattern.map(str::to_owned),
        }
    }
}

/// One phase as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    pub name: PhaseName,
    pub commands: Vec<String>,
    pub finally: Vec<String>,
    pub on_failure: OnFailure,
    /// `runtime-versions` (install): noted; which runtimes exist is the
    /// image's business.
    pub runtime_versions: Vec<(String, String)>,
}

/// Everything a build of this buildspec runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runnable {
    pub version: Version,
    /// `env.shell`; `None` is the image's default (`sh` on Linux).
    pub shell: Option<String>,
    /// `env.variables` (0.1: `environment_variables.plaintext`).
    pub variables: Vec<(String, String)>,
    /// `env.parameter-store`: variable → SSM parameter name.
    pub parameter_store: Vec<(String, String)>,
    /// `env.secrets-manager`: variable → secret reference.
    pub secrets_manager: Vec<(String, String)>,
    /// `env.exported-variables`.
    pub exported_variables: Vec<String>,
    /// The phases present, in CodeBuild's order.
    pub phases: Vec<Phase>,
}

/// What a buildspec runs, with its warnings; or its errors (with the
/// warnings) when CodeBuild would not run it.
pub fn runnable(text: &str) -> Result<(Runnable, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (analysis, root) = analyse_tree(text);
    if analysis
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error)
    {
        return Err(analysis.diagnostics);
    }
    let Some(root) = root else {
        // No document: analyse reported it as an error.
        return Err(analysis.diagnostics);
    };
    let version = match analysis.version.as_deref() {
        Some("0.1") => Version::V01,
        _ => Version::V02,
    };
    let env = match version {
        Version::V02 => root.get("env"),
        Version::V01 => None,
    };
    let variables = match version {
        Version::V02 => pairs(env.and_then(|e| e.get("variables"))),
        Version::V01 => pairs(
            root.get("environment_variables")
                .and_then(|e| e.get("plaintext")),
        ),
    };
    let mut phases = Vec::new();
    if let Some(all) = root.get("phases") {
        for name in PhaseName::ALL {
            let Some(node) = all.get(name.key()) else {
                continue;
            };
            let on_failure = node
                .get("on-failure")
                .and_then(Node::as_str)
                .map(OnFailure::parse)
                .unwrap_or_default();
            phases.push(Phase {
                name,
                commands: commands(node.get("commands")),
                finally: commands(node.get("finally")),
                on_failure,
                runtime_versions: pairs(node.get("runtime-versions")),
            });
        }
    }
    let runnable = Runnable {
        version,
        shell: env
            .and_then(|e| e.get("shell"))
            .and_then(Node::as_str)
            .map(str::to_owned),
        variables,
        parameter_store: pairs(env.and_then(|e| e.get("parameter-store"))),
        secrets_manager: pairs(env.and_then(|e| e.get("secrets-manager"))),
        exported_variables: commands(env.and_then(|e| e.get("exported-variables"))),
        phases,
    };
    Ok((runnable, analysis.diagnostics))
}

/// A list of strings; a single string is one item (`commands: |`, corpus
/// 148.yml); null and empty items are nothing.
fn commands(node: Option<&Node>) -> Vec<String> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Some(Value::Scalar { text, .. }) => vec![text.clone()],
        _ => Vec::new(),
    }
}

/// A mapping of scalars, in file order.
fn pairs(node: Option<&Node>) -> Vec<(String, String)> {
    let Some(Value::Map(entries)) = node.map(|n| &n.value) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(k, v)| {
            let value = match &v.value {
                Value::Scalar { text, .. } => text.clone(),
                Value::Null => String::new(),
                _ => return None,
            };
            Some((k.as_str()?.to_owned(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_come_in_codebuilds_order_whatever_the_files_order() {
        let text = "\
version: 0.2
env:
  shell: bash
  variables:
    GREETING: hello
    RETRIES: 3
  parameter-store:
    TOKEN: /gantry/dev/token
  exported-variables: [IMAGE_TAG]
phases:
  post_build:
    commands:
      - echo done
  build:
    on-failure: CONTINUE
    commands:
      - make test
    finally:
      - make clean
  install:
    runtime-versions:
      python: 3.12
";
        let (r, _) = runnable(text).expect("valid");
        let names: Vec<PhaseName> = r.phases.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [PhaseName::Install, PhaseName::Build, PhaseName::PostBuild]
        );
        assert_eq!(r.version, Version::V02);
        assert_eq!(r.shell.as_deref(), Some("bash"));
        assert_eq!(
            r.variables,
            [
                ("GREETING".to_owned(), "hello".to_owned()),
                ("RETRIES".to_owned(), "3".to_owned())
            ]
        );
        assert_eq!(r.parameter_store[0].1, "/gantry/dev/token");
        assert_eq!(r.exported_variables, ["IMAGE_TAG"]);
        let build = &r.phases[1];
        assert_eq!(build.on_failure, OnFailure::Continue);
        assert_eq!(build.commands, ["make test"]);
        assert_eq!(build.finally, ["make clean"]);
        assert_eq!(
            r.phases[0].runtime_versions,
            [("python".to_owned(), "3.12".to_owned())]
        );
    }

    #[test]
    fn a_buildspec_codebuild_would_refuse_does_not_run() {
        let errors = runnable("version: 0.2\nphases:\n  biuld:\n    commands: [make]\n")
            .expect_err("a wrong phase name");
        assert!(
            errors.iter().any(|d| d.severity == Severity::Error),
            "{errors:?}"
        );
    }

    #[test]
    fn version_01_reads_its_own_variables_and_a_block_command() {
        let text = "\
version: 0.1
environment_variables:
  plaintext:
    A: b
phases:
  build:
    commands: |
      echo one
      echo two
";
        let (r, _) = runnable(text).expect("valid");
        assert_eq!(r.version, Version::V01);
        assert_eq!(r.variables, [("A".to_owned(), "b".to_owned())]);
        assert_eq!(r.phases[0].commands, ["echo one\necho two\n"]);
    }

    #[test]
    fn retry_reads_its_count_and_its_pattern() {
        assert_eq!(
            OnFailure::parse("RETRY"),
            OnFailure::Retry {
                attempts: 3,
                pattern: None
            }
        );
        assert_eq!(
            OnFailure::parse("RETRY-4"),
            OnFailure::Retry {
                attempts: 4,
                pattern: None
            }
        );
        assert_eq!(
            OnFailure::parse("Retry-8-invalid+"),
            OnFailure::Retry {
                attempts: 8,
                pattern: Some("invalid+".into())
            }
        );
        assert_eq!(
            OnFailure::parse("RETRY-2024x-y"),
            OnFailure::Retry {
                attempts: 3,
                pattern: Some("2024x-y".into())
            }
        );
    }
}
