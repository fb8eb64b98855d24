//! Walks a parsed buildspec against the grammar in [`super::schema`] and
//! reports every problem at once.
//!
//! Severity follows what CodeBuild does with the file (reference §4, §11):
//! what makes it fail the build with `YAML_FILE_ERROR` or run something other
//! than what is written is an **error** (a command that is a mapping or null,
//! a wrong phase name, a missing or unknown `version`, a wrong type, a value
//! outside a closed set, duplicate keys); what it ignores with "Found
//! possible syntax errors in buildspec" is a **warning** (unknown,
//! misplaced, deprecated and undocumented keys), with a suggestion when the
//! key is a near miss.
//!
//! The walk borrows from the tree and builds a dotted path only when a
//! diagnostic needs one.

use super::schema::{self, *};
use crate::diagnostic::Diagnostic;
use crate::yaml::read::{Entries, Path, Reader, UnknownKeys, near_miss};
use crate::yaml::{Node, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V01,
    V02,
}

/// The result of a walk: diagnostics (unsorted) and what later stages need.
pub(super) struct Checked {
    pub diagnostics: Vec<Diagnostic>,
    pub parameter_store: Vec<(String, String)>,
    pub secrets_manager: Vec<(String, String)>,
    pub artifacts: bool,
    pub version: Option<String>,
}

/// Checks the document's root node.
pub(super) fn check(text: &str, root: &Node) -> Checked {
    let mut checker = Checker {
        text,
        version: Version::V02,
        read: Reader::new(UnknownKeys::Warning {
            ignored_by: "CodeBuild",
        }),
        parameter_store: Vec::new(),
        secrets_manager: Vec::new(),
        artifacts: false,
        version_text: None,
    };
    checker.root(root);
    Checked {
        diagnostics: checker.read.diagnostics,
        parameter_store: checker.parameter_store,
        secrets_manager: checker.secrets_manager,
        artifacts: checker.artifacts,
        version: checker.version_text,
    }
}

struct Checker<'t> {
    /// The source, for hints that depend on how a line was written.
    text: &'t str,
    version: Version,
    read: Reader,
    parameter_store: Vec<(String, String)>,
    secrets_manager: Vec<(String, String)>,
    /// A primary `artifacts` section with `files`.
    artifacts: bool,
    version_text: Option<String>,
}

impl Checker<'_> {
    /// A key the section does not know. CodeBuild ignores it with the
    /// warning "Found possible syntax errors in buildspec … The following
    /// keys cannot be identified" (reference §3, §4, §11), so it is a
    /// warning; known mistakes get a message that says what was meant.
    fn unknown(&mut self, key_node: &Node, key: &str, path: &Path<'_>, known: &[&str]) {
        let section = match path {
            Path::Root => "the top level".to_owned(),
            _ => format!("`{path}`"),
        };
        let message = if PHASES.contains(&key) {
            // Corpus 128.yml: `build:` indented under `env`.
            format!(
                "`{key}` is a phase name, but it is under {section}, not `phases`: check its \
                 indentation; CodeBuild ignores it here, so its commands never run"
            )
        } else if BATCH_TYPES.contains(&key) || key == "fast-fail" {
            // Corpus 155.yml: `build-matrix` at the top level.
            format!(
                "`{key}` belongs under `batch:`; CodeBuild ignores it under {section}, so no \
                 batch build is configured"
            )
        } else if key == "steps" {
            // Corpus 025.yml, 057.yml.
            "`steps` is GitHub Actions syntax; CodeBuild ignores it — write shell commands \
             under `commands:`"
                .to_owned()
        } else {
            return self.read.unknown(key_node, key, path, known);
        };
        self.read.misplaced(key_node, key, path, message);
    }

    /// A key of version 0.2 in a version 0.1 buildspec (reference §9).
    fn needs_v02(&mut self, key_node: &Node, key: &str, path: &Path<'_>) {
        self.read.warning(
            key_node.pos,
            &Path::Key(path, key),
            format!("`{key}` needs `version: 0.2`; version 0.1 does not know it"),
        );
    }

    /// A yes/no flag; both YAML 1.1 spellings work (reference §10).
    fn flag(&mut self, node: &Node, path: &Path<'_>) {
        match &node.value {
            Value::Scalar { text, .. } => {
                if schema::flag(text).is_none() {
                    self.read.error(
                        node.pos,
                        path,
                        format!(
                            "`{text}` is not a flag: expected yes or no (true or false also work)"
                        ),
                    );
                }
            }
            Value::Null => self
                .read
                .warning(node.pos, path, "has no value; CodeBuild ignores it"),
            _ => self.read.wrong_type(node, path, "yes or no"),
        }
    }

    /// A list of strings such as globs; a single string is one item, as
    /// CodeBuild reads it (corpus 012-style `files: imageDetail.json`).
    fn string_list(&mut self, node: &Node, path: &Path<'_>) {
        match &node.value {
            Value::Seq(items) => {
                for (index, item) in items.iter().enumerate() {
                    let here = Path::Index(path, index);
                    match &item.value {
                        Value::Scalar { .. } => {}
                        Value::Null => {
                            self.read
                                .warning(item.pos, &here, "empty item; remove the bare `-`")
                        }
                        _ => self.read.wrong_type(item, &here, "a string"),
                    }
                }
            }
            Value::Scalar { .. } => {}
            Value::Null => self
                .read
                .warning(node.pos, path, "has no value; CodeBuild ignores it"),
            Value::Map(_) => self.read.wrong_type(node, path, "a list"),
        }
    }

    fn root(&mut self, root: &Node) {
        let path = Path::Root;
        if !matches!(root.value, Value::Map(_)) {
            self.read.error(
                root.pos,
                &path,
                format!(
                    "a buildspec is a mapping with keys such as `version` and `phases`; found {}",
                    root.kind()
                ),
            );
            return;
        }
        let entries = self.read.mapping(root, &path).unwrap_or_default();
        self.version(root, &entries);
        let top_keys = match self.version {
            Version::V01 => TOP_KEYS_V01,
            Version::V02 => TOP_KEYS,
        };
        let mut runs_something = false;
        for &(key_node, key, value) in &entries {
            let here = Path::Key(&path, key);
            if !top_keys.contains(&key) {
                if TOP_KEYS.contains(&key) {
                    self.needs_v02(key_node, key, &path);
                } else if key == "environment_variables" {
                    // Corpus 145.yml, 146.yml, 094.yml.
                    self.read.warning(
                        key_node.pos,
                        &here,
                        "`environment_variables` is the version 0.1 name of `env` (and \
                         `plaintext` of `variables`); CodeBuild ignores it in version 0.2, so \
                         these variables are not set",
                    );
                    continue;
                } else {
                    self.unknown(key_node, key, &path, top_keys);
                    continue;
                }
            }
            match key {
                "version" => {}
                "run-as" => {
                    self.read.string(value, &here);
                }
                "env" => self.env(value, &here),
                "environment_variables" => self.env_v01(value, &here),
                "proxy" => self.flags(value, &here, PROXY_KEYS),
                "batch" => {
                    runs_something = true;
                    self.batch(key_node, value, &here);
                }
                "phases" => {
                    runs_something = true;
                    self.phases(value, &here);
                }
                "reports" => self.reports(value, &here),
                "artifacts" => self.artifacts(value, &here, false),
                "cache" => self.cache(value, &here),
                _ => {}
            }
        }
        if !runs_something {
            // Not an error: env/artifacts-only buildspecs run in production
            // (corpus 052.yml, aws/amazon-ecs-agent).
            self.read.warning(
                root.pos,
                &path,
                "no `phases` (and no `batch`): this buildspec runs no commands",
            );
        }
    }

    fn version(&mut self, root: &Node, entries: &Entries<'_>) {
        let path = Path::Key(&Path::Root, "version");
        let Some(&(_, _, value)) = entries.iter().find(|(_, key, _)| *key == "version") else {
            // Corpus 102.yml.
            self.read.error(
                root.pos,
                &Path::Root,
                "missing `version`: CodeBuild requires `version: 0.2` at the top of a buildspec",
            );
            return;
        };
        match &value.value {
            Value::Scalar { text, .. } => {
                self.version_text = Some(text.clone());
                match text.as_str() {
                    "0.2" => self.version = Version::V02,
                    "0.1" => self.version = Version::V01,
                    "0.0" => self.read.error(
                        value.pos,
                        &path,
                        "unsupported version `0.0` (the 2017 preview layout): CodeBuild reads \
                         0.2 (recommended) and 0.1",
                    ),
                    other => self.read.error(
                        value.pos,
                        &path,
                        format!(
                            "unsupported version `{other}`: CodeBuild reads 0.2 (recommended) and 0.1"
                        ),
                    ),
                }
            }
            Value::Null => self.read.error(
                value.pos,
                &path,
                "`version` has no value; write `version: 0.2`",
            ),
            _ => self.read.wrong_type(value, &path, "`0.2` or `0.1`"),
        }
    }

    /// A mapping of yes/no flags (`proxy`).
    fn flags(&mut self, node: &Node, path: &Path<'_>, known: &[&str]) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (key_node, key, value) in entries {
            if known.contains(&key) {
                self.flag(value, &Path::Key(path, key));
            } else {
                self.unknown(key_node, key, path, known);
            }
        }
    }

    fn env(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (key_node, key, value) in entries {
            let here = Path::Key(path, key);
            match key {
                "shell" => {
                    if let Some(shell) = self.read.string(value, &here)
                        && !SHELLS.contains(&shell)
                    {
                        self.read.warning(
                            value.pos,
                            &here,
                            format!(
                                "`{shell}` is not a shell CodeBuild documents (bash or /bin/sh on \
                                 Linux, powershell.exe or cmd.exe on Windows)"
                            ),
                        );
                    }
                }
                "variables" => self.variables(value, &here),
                "parameter-store" => self.parameter_store(value, &here),
                "exported-variables" => self.exported_variables(value, &here),
                "secrets-manager" => self.secrets_manager(value, &here),
                "git-credential-helper" => self.flag(value, &here),
                // Corpus 037–040: CodeBuild warns "In the section env The
                // following keys cannot be identified: compute-type".
                "compute-type" => self.read.warning(
                    key_node.pos,
                    &here,
                    "`compute-type` is not an `env` key; CodeBuild ignores it — set the compute \
                     type on the project, or in a batch task's `env`",
                ),
                // Corpus 152.yml, and 0.1's name inside a 0.2 `env`.
                "environment" | "plaintext" => self.read.warning(
                    key_node.pos,
                    &here,
                    format!(
                        "unknown key `{key}` in `env`; CodeBuild ignores it, so these variables \
                         are not set — did you mean `variables`?"
                    ),
                ),
                _ => self.unknown(key_node, key, path, ENV_KEYS),
            }
        }
    }

    /// Version 0.1's `environment_variables` (reference §9).
    fn env_v01(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (key_node, key, value) in entries {
            match key {
                "plaintext" => self.variables(value, &Path::Key(path, key)),
                _ => self.unknown(key_node, key, path, ENV_KEYS_V01),
            }
        }
    }

    /// A map of variable name to value. Plain numbers and booleans are fine:
    /// CodeBuild reads the text (`WORKERS: 1`, `DEBUG: true` run in the corpus).
    fn variables(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (key_node, name, value) in entries {
            let here = Path::Key(path, name);
            if name.starts_with("CODEBUILD_") {
                self.read.warning(
                    key_node.pos,
                    &here,
                    "names starting with `CODEBUILD_` are reserved for CodeBuild's own variables",
                );
            }
            match &value.value {
                Value::Scalar { .. } => {}
                Value::Null => self.read.warning(
                    value.pos,
                    &here,
                    "has no value; write \"\" if you mean an empty string",
                ),
                _ => self.read.wrong_type(value, &here, "a string"),
            }
        }
    }

    /// `env.parameter-store`: also kept for later stages when it is valid.
    fn parameter_store(&mut self, node: &Node, path: &Path<'_>) {
        let before = self.read.errors();
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        let mut found = Vec::with_capacity(entries.len());
        for (_, name, value) in entries {
            let here = Path::Key(path, name);
            match &value.value {
                Value::Scalar { text, .. } if !text.is_empty() => {
                    found.push((name.to_owned(), text.clone()));
                }
                Value::Scalar { .. } | Value::Null => {
                    self.read
                        .error(value.pos, &here, "needs the name of an SSM parameter")
                }
                _ => self
                    .read
                    .wrong_type(value, &here, "the name of an SSM parameter (a string)"),
            }
        }
        if self.read.errors() == before {
            self.parameter_store = found;
        }
    }

    fn exported_variables(&mut self, node: &Node, path: &Path<'_>) {
        self.string_list(node, path);
        if let Value::Seq(items) = &node.value {
            for (index, item) in items.iter().enumerate() {
                if item.as_str().is_some_and(|name| name.starts_with("AWS_")) {
                    self.read.warning(
                        item.pos,
                        &Path::Index(path, index),
                        "variables whose names start with `AWS_` cannot be exported",
                    );
                }
            }
        }
    }

    /// `name: secret-id[:json-key[:version-stage[:version-id]]]`, where the
    /// secret id may be an ARN, itself full of colons (reference §3).
    fn secrets_manager(&mut self, node: &Node, path: &Path<'_>) {
        let before = self.read.errors();
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        let mut found = Vec::with_capacity(entries.len());
        for (_, name, value) in entries {
            let here = Path::Key(path, name);
            let reference = match &value.value {
                Value::Scalar { text, .. } if !text.is_empty() => text.as_str(),
                Value::Scalar { .. } | Value::Null => {
                    self.read.error(value.pos, &here, "needs a secret reference: secret-id[:json-key[:version-stage[:version-id]]]");
                    continue;
                }
                _ => {
                    self.read
                        .wrong_type(value, &here, "a secret reference (a string)");
                    continue;
                }
            };
            found.push((name.to_owned(), reference.to_owned()));
            let rest = &reference[super::secret_id(reference).len()..];
            let fields: Vec<&str> = rest.split(':').skip(1).collect();
            if fields.len() > 3 {
                self.read.warning(
                    value.pos,
                    &here,
                    "too many `:` fields: expected secret-id:json-key:version-stage:version-id",
                );
            } else if let [_, stage, id] = fields.as_slice()
                && !stage.is_empty()
                && !id.is_empty()
            {
                self.read.warning(
                    value.pos,
                    &here,
                    "give a version-stage or a version-id, not both",
                );
            }
        }
        if self.read.errors() == before {
            self.secrets_manager = found;
        }
    }

    fn phases(&mut self, node: &Node, path: &Path<'_>) {
        if node.is_null() {
            self.read.warning(
                node.pos,
                path,
                "`phases` is empty; this buildspec runs no commands",
            );
            return;
        }
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (key_node, name, value) in entries {
            if PHASES.contains(&name) {
                self.phase(key_node, name, value, &Path::Key(path, name));
            } else {
                // CodeBuild's hard error (reference §4).
                let hint = near_miss(name, PHASES)
                    .map(|k| format!(" — did you mean `{k}`?"))
                    .unwrap_or_default();
                self.read.error(
                    key_node.pos,
                    &Path::Key(path, name),
                    format!(
                        "`{name}` is not a phase: CodeBuild fails with \"Invalid buildspec phase \
                         name\"; the phases are install, pre_build, build and post_build{hint}"
                    ),
                );
            }
        }
    }

    fn phase(&mut self, key_node: &Node, name: &str, node: &Node, path: &Path<'_>) {
        if node.is_null() {
            self.read.warning(
                key_node.pos,
                path,
                format!("phase `{name}` is empty; it runs nothing"),
            );
            return;
        }
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        let known = match self.version {
            Version::V01 => PHASE_KEYS_V01,
            Version::V02 => PHASE_KEYS,
        };
        let mut has_commands = false;
        for &(key_node, key, value) in &entries {
            let here = Path::Key(path, key);
            if !known.contains(&key) && PHASE_KEYS.contains(&key) {
                self.needs_v02(key_node, key, path);
            }
            match key {
                "run-as" => {
                    self.read.string(value, &here);
                }
                "on-failure" => {
                    if let Some(action) = self.read.string(value, &here)
                        && let Some(problem) = on_failure_problem(action)
                    {
                        self.read.error(value.pos, &here, problem);
                    }
                }
                "runtime-versions" if name == "install" => {
                    self.runtime_versions(key_node, value, &here)
                }
                "runtime-versions" => self.read.warning(
                    key_node.pos,
                    &here,
                    "`runtime-versions` works only in the install phase; CodeBuild ignores it here",
                ),
                "commands" | "finally" => {
                    has_commands = true;
                    self.commands(value, &here);
                }
                _ => self.unknown(key_node, key, path, known),
            }
        }
        // The reference: commands is "Required sequence if build is
        // specified" (likewise pre_build, post_build). A phase with only
        // `finally` runs (corpus 014.yml, 086.yml), and so does
        // `commands:` left empty (020.yml, 054.yml), so either key counts.
        if name != "install" && !has_commands {
            let steps = if entries.iter().any(|(_, key, _)| *key == "steps") {
                " (`steps` is GitHub Actions syntax, which CodeBuild ignores)"
            } else {
                ""
            };
            self.read.error(
                key_node.pos,
                path,
                format!(
                    "phase `{name}` has no `commands`: CodeBuild requires them in {name}{steps}"
                ),
            );
        }
    }

    /// `commands` and `finally`: every item must be a string (CodeBuild's
    /// "Expected Commands[N] to be of string type", reference §4).
    fn commands(&mut self, node: &Node, path: &Path<'_>) {
        let items = match &node.value {
            Value::Seq(items) => items,
            // `commands: |` is one script (corpus 148.yml); `commands:`
            // left empty runs nothing (corpus 020.yml, 054.yml, 115.yml).
            Value::Scalar { .. } | Value::Null => return,
            Value::Map(_) => {
                self.read.error(
                    node.pos,
                    path,
                    "expected a list of commands (`- command`), found a mapping — did you forget \
                     the `- ` or to quote a ':'?",
                );
                return;
            }
        };
        for (index, item) in items.iter().enumerate() {
            let here = Path::Index(path, index);
            match &item.value {
                Value::Scalar { .. } => {}
                Value::Null => {
                    // Corpus 016.yml, 036.yml: `- # comment` is an empty
                    // item followed by a comment, not a comment line.
                    let line = nth_line(self.text, item.pos.line).unwrap_or_default();
                    let hint = if line
                        .trim_start()
                        .trim_start_matches('-')
                        .trim_start()
                        .starts_with('#')
                    {
                        " `- # …` is an empty command followed by a comment, not a comment line; \
                         remove the `-`"
                    } else {
                        " remove the bare `-` or write the command after it"
                    };
                    self.read
                        .error(item.pos, &here, format!("empty command (null):{hint}"));
                }
                Value::Map(_) => self.read.error(
                    item.pos,
                    &here,
                    format!(
                        "expected a string, found a mapping — did you forget to quote a ':'? \
                         YAML reads an unquoted `: ` as a key (CodeBuild: \"Expected \
                         Commands[{index}] to be of string type: found subkeys instead\")"
                    ),
                ),
                Value::Seq(_) => self.read.wrong_type(item, &here, "a string"),
            }
        }
    }

    /// `runtime-versions`: runtime name to version. Which runtimes and
    /// versions exist depends on the image (reference §4), so only the
    /// shape is an error; an unfamiliar name is a warning.
    fn runtime_versions(&mut self, key_node: &Node, node: &Node, path: &Path<'_>) {
        let empty = match &node.value {
            Value::Null => true,
            Value::Map(entries) => entries.is_empty(),
            _ => false,
        };
        if empty {
            self.read.error(
                key_node.pos,
                path,
                "`runtime-versions` is empty; when present it needs at least one runtime",
            );
            return;
        }
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (runtime_node, runtime, version) in entries {
            let here = Path::Key(path, runtime);
            if !RUNTIMES.contains(&runtime) {
                let hint = near_miss(runtime, RUNTIMES)
                    .map(|k| format!(" — did you mean `{k}`?"))
                    .unwrap_or_default();
                self.read.warning(
                    runtime_node.pos,
                    &here,
                    format!(
                        "`{runtime}` is not a runtime CodeBuild images offer ({}){hint}",
                        RUNTIMES.join(", ")
                    ),
                );
            }
            match &version.value {
                Value::Scalar { .. } => {}
                Value::Null => self.read.error(
                    version.pos,
                    &here,
                    "needs a version: a number, `N.x`, `latest` or a `$VARIABLE`",
                ),
                _ => self.read.wrong_type(version, &here, "a version"),
            }
        }
    }

    fn reports(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (index, &(key_node, group, value)) in entries.iter().enumerate() {
            let here = Path::Key(path, group);
            if index == MAX_REPORT_GROUPS {
                self.read.warning(
                    key_node.pos,
                    &here,
                    format!(
                        "CodeBuild allows at most {MAX_REPORT_GROUPS} report groups per project"
                    ),
                );
            }
            self.report(key_node, value, &here);
        }
    }

    fn report(&mut self, key_node: &Node, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            if node.is_null() {
                self.read
                    .error(key_node.pos, path, "a report group needs `files`");
            }
            return;
        };
        let mut has_files = false;
        for (key_node, key, value) in entries {
            let here = Path::Key(path, key);
            match key {
                "files" => {
                    has_files = true;
                    self.string_list(value, &here);
                }
                "base-directory" => {
                    self.read.string(value, &here);
                }
                "discard-paths" => self.flag(value, &here),
                "file-format" => {
                    if let Some(format) = self.read.string(value, &here)
                        && !FILE_FORMATS.iter().any(|f| f.eq_ignore_ascii_case(format))
                    {
                        self.read.error(
                            value.pos,
                            &here,
                            format!(
                                "`{format}` is not a report format; expected one of {} (any case)",
                                FILE_FORMATS.join(", ")
                            ),
                        );
                    }
                }
                _ => self.unknown(key_node, key, path, REPORT_KEYS),
            }
        }
        if !has_files {
            self.read
                .error(key_node.pos, path, "a report group needs `files`");
        }
    }

    fn artifacts(&mut self, node: &Node, path: &Path<'_>, secondary: bool) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        let known = match (self.version, secondary) {
            (Version::V01, _) => ARTIFACT_KEYS_V01,
            (Version::V02, false) => ARTIFACT_KEYS,
            (Version::V02, true) => SECONDARY_ARTIFACT_KEYS,
        };
        let mut has_files = false;
        for &(key_node, key, value) in &entries {
            let here = Path::Key(path, key);
            if !known.contains(&key) && ARTIFACT_KEYS.contains(&key) && self.version == Version::V01
            {
                self.needs_v02(key_node, key, path);
            }
            match key {
                "files" => {
                    has_files = true;
                    self.string_list(value, &here);
                }
                "exclude-paths" => self.string_list(value, &here),
                "name" | "base-directory" | "s3-prefix" => {
                    self.read.string(value, &here);
                }
                "discard-paths" | "enable-symlinks" => self.flag(value, &here),
                "secondary-artifacts" if !secondary => self.secondary_artifacts(value, &here),
                "type" if self.version == Version::V01 => {
                    self.read.string(value, &here);
                }
                // Reference §7, §9: deprecated in 0.2 but still generated by
                // Chalice and SAM (corpus 060.yml).
                "type" => self.read.warning(
                    key_node.pos,
                    &here,
                    "`artifacts.type` is deprecated since version 0.2 and ignored; the project's \
                     artifact settings decide the packaging",
                ),
                _ => self.unknown(key_node, key, path, known),
            }
        }
        if has_files && !secondary {
            self.artifacts = true;
        }
        if !has_files {
            let pos = entries.first().map_or(node.pos, |(k, _, _)| k.pos);
            self.read.error(
                pos,
                path,
                "artifacts need `files` (a list of paths or globs such as '**/*'), even when only \
                 secondary artifacts are defined",
            );
        }
    }

    fn secondary_artifacts(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (_, identifier, value) in entries {
            self.artifacts(value, &Path::Key(path, identifier), true);
        }
    }

    fn cache(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        let has_key = entries.iter().any(|(_, key, _)| *key == "key");
        for &(key_node, key, value) in &entries {
            let here = Path::Key(path, key);
            match key {
                "paths" => self.string_list(value, &here),
                "key" => {
                    self.read.string(value, &here);
                }
                "fallback-keys" => {
                    self.string_list(value, &here);
                    if let Value::Seq(items) = &value.value
                        && let Some(extra) = items.get(MAX_FALLBACK_KEYS)
                    {
                        self.read.warning(
                            extra.pos,
                            &here,
                            format!("CodeBuild uses at most {MAX_FALLBACK_KEYS} fallback keys"),
                        );
                    }
                    if !has_key {
                        self.read.warning(
                            key_node.pos,
                            &here,
                            "`fallback-keys` is ignored when `key` is absent",
                        );
                    }
                }
                "action" => {
                    if let Some(action) = self.read.string(value, &here)
                        && !CACHE_ACTIONS.contains(&action)
                    {
                        self.read.error(
                            value.pos,
                            &here,
                            format!("`{action}` is not a cache action: expected restore or save"),
                        );
                    }
                }
                _ => self.unknown(key_node, key, path, CACHE_KEYS),
            }
        }
    }

    fn batch(&mut self, batch_key: &Node, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            if node.is_null() {
                self.read.error(
                    batch_key.pos,
                    path,
                    "`batch` is empty; it needs one of build-graph, build-list, build-matrix or build-fanout",
                );
            }
            return;
        };
        let mut kind_seen: Option<&str> = None;
        for (key_node, key, value) in entries {
            let here = Path::Key(path, key);
            if BATCH_TYPES.contains(&key) {
                if let Some(first) = kind_seen {
                    self.read.error(
                        key_node.pos,
                        &here,
                        format!(
                            "a buildspec has one batch type, and this one already has `{first}`"
                        ),
                    );
                }
                kind_seen = Some(key);
            }
            match key {
                "fast-fail" => self.flag(value, &here),
                "build-graph" => self.tasks(value, &here, true),
                "build-list" => self.tasks(value, &here, false),
                "build-matrix" => self.matrix(value, &here),
                "build-fanout" => self.fanout(key_node, value, &here),
                _ => self.unknown(key_node, key, path, BATCH_KEYS),
            }
        }
        if kind_seen.is_none() {
            self.read.error(
                batch_key.pos,
                path,
                "`batch` needs one of build-graph, build-list, build-matrix or build-fanout",
            );
        }
    }

    /// `build-graph` (with `depend-on`) or `build-list` tasks (reference §5).
    fn tasks(&mut self, node: &Node, path: &Path<'_>, graph: bool) {
        let items = match &node.value {
            Value::Seq(items) => items,
            Value::Null => {
                self.read.warning(node.pos, path, "has no builds");
                return;
            }
            _ => {
                self.read.wrong_type(node, path, "a list of builds");
                return;
            }
        };
        let mut identifiers: Vec<&str> = Vec::with_capacity(items.len());
        let mut dependencies: Vec<(&Node, usize)> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let here = Path::Index(path, index);
            let Some(entries) = self.read.mapping(item, &here) else {
                if item.is_null() {
                    self.read
                        .error(item.pos, &here, "empty build: remove the bare `-`");
                }
                continue;
            };
            let mut has_identifier = false;
            for (key_node, key, value) in entries {
                let field = Path::Key(&here, key);
                match key {
                    "identifier" => {
                        has_identifier = true;
                        if let Some(id) = self.read.string(value, &field) {
                            if identifiers.contains(&id) {
                                self.read.error(
                                    value.pos,
                                    &field,
                                    format!("identifier `{id}` is used by another build"),
                                );
                            }
                            identifiers.push(id);
                        }
                    }
                    "buildspec" => {
                        self.read.string(value, &field);
                    }
                    "debug-session" | "ignore-failure" => self.flag(value, &field),
                    "depend-on" if graph => {
                        self.string_list(value, &field);
                        dependencies.push((value, index));
                    }
                    "depend-on" => self.read.warning(
                        key_node.pos,
                        &field,
                        "`depend-on` works only in build-graph; build-list ignores it",
                    ),
                    "env" => self.task_env(value, &field),
                    _ => self.unknown(key_node, key, &here, TASK_KEYS),
                }
            }
            if !has_identifier {
                self.read
                    .error(item.pos, &here, "every batch build needs an `identifier`");
            }
        }
        for (value, index) in dependencies {
            let owner = Path::Index(path, index);
            let here = Path::Key(&owner, "depend-on");
            let targets: Vec<&Node> = match &value.value {
                Value::Seq(items) => items.iter().collect(),
                Value::Scalar { .. } => vec![value],
                _ => Vec::new(),
            };
            for target in targets {
                if let Some(id) = target.as_str()
                    && !identifiers.contains(&id)
                {
                    self.read.error(
                        target.pos,
                        &here,
                        format!(
                            "depends on `{id}`, which no build in this graph has as identifier"
                        ),
                    );
                }
            }
        }
    }

    /// A batch build's environment overrides (reference §5).
    fn task_env(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        let mut compute_type = false;
        let mut fleet = None;
        for (key_node, key, value) in entries {
            let here = Path::Key(path, key);
            match key {
                "compute-type" => {
                    compute_type = true;
                    self.read.string(value, &here);
                }
                "fleet" => {
                    fleet = Some(key_node);
                    self.read.string(value, &here);
                }
                "image" | "type" => {
                    self.read.string(value, &here);
                }
                "privileged-mode" => self.flag(value, &here),
                "variables" => self.variables(value, &here),
                _ => self.unknown(key_node, key, path, TASK_ENV_KEYS),
            }
        }
        if compute_type && let Some(fleet) = fleet {
            self.read.error(
                fleet.pos,
                &Path::Key(path, "fleet"),
                "give `compute-type` or `fleet`, not both",
            );
        }
    }

    fn matrix(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (key_node, key, value) in entries {
            let here = Path::Key(path, key);
            match key {
                "static" => self.matrix_static(value, &here),
                "dynamic" => self.matrix_dynamic(value, &here),
                _ => self.unknown(key_node, key, path, MATRIX_KEYS),
            }
        }
    }

    fn matrix_static(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (key_node, key, value) in entries {
            let here = Path::Key(path, key);
            match key {
                "ignore-failure" | "debug-session" => self.flag(value, &here),
                "env" => self.task_env(value, &here),
                _ => self.unknown(key_node, key, path, MATRIX_STATIC_KEYS),
            }
        }
    }

    /// `build-matrix.dynamic`: every value is a list of alternatives, one
    /// build per combination (reference §5).
    fn matrix_dynamic(&mut self, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            return;
        };
        for (key_node, key, value) in entries {
            let here = Path::Key(path, key);
            match key {
                "buildspec" => self.string_list(value, &here),
                "env" => {
                    let Some(env) = self.read.mapping(value, &here) else {
                        continue;
                    };
                    for (env_key_node, env_key, env_value) in env {
                        let field = Path::Key(&here, env_key);
                        match env_key {
                            "compute-type" | "fleet" | "image" => {
                                self.string_list(env_value, &field)
                            }
                            "variables" => {
                                let Some(variables) = self.read.mapping(env_value, &field) else {
                                    continue;
                                };
                                for (_, name, values) in variables {
                                    self.string_list(values, &Path::Key(&field, name));
                                }
                            }
                            _ => {
                                self.unknown(env_key_node, env_key, &here, MATRIX_DYNAMIC_ENV_KEYS)
                            }
                        }
                    }
                }
                _ => self.unknown(key_node, key, path, MATRIX_DYNAMIC_KEYS),
            }
        }
    }

    fn fanout(&mut self, key_node: &Node, node: &Node, path: &Path<'_>) {
        let Some(entries) = self.read.mapping(node, path) else {
            if node.is_null() {
                self.read
                    .error(key_node.pos, path, "`build-fanout` needs `parallelism`");
            }
            return;
        };
        let mut has_parallelism = false;
        for (entry_node, key, value) in entries {
            let here = Path::Key(path, key);
            match key {
                "parallelism" => {
                    has_parallelism = true;
                    if let Some(text) = self.read.string(value, &here)
                        && !text.parse::<u32>().is_ok_and(|n| n > 0)
                    {
                        self.read.error(
                            value.pos,
                            &here,
                            format!("`{text}` is not a number of shards: expected a whole number above 0"),
                        );
                    }
                }
                "ignore-failure" => self.flag(value, &here),
                _ => self.unknown(entry_node, key, path, FANOUT_KEYS),
            }
        }
        if !has_parallelism {
            self.read
                .error(key_node.pos, path, "`build-fanout` needs `parallelism`");
        }
    }
}

fn nth_line(text: &str, line: u32) -> Option<&str> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    text.lines().nth(index)
}
