//! Every real buildspec in the corpus: no false errors, and the real problem
//! found in each file the manifest marks `suspect-invalid`.
//!
//! The corpus lives outside the worktree (`shared/corpus` of the main
//! checkout); `$GANTRY_CORPUS` points elsewhere.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gantry_core::buildspec::{analyse, validate};
use gantry_core::diagnostic::{Diagnostic, Severity};

fn corpus_dir() -> PathBuf {
    let root = std::env::var_os("GANTRY_CORPUS").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/corpus"
            ))
        },
        PathBuf::from,
    );
    let dir = root.join("buildspecs");
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "buildspec corpus not found at {}: set GANTRY_CORPUS to the folder holding buildspecs/MANIFEST.tsv",
        dir.display()
    );
    dir
}

/// File name -> notes column of MANIFEST.tsv.
fn manifest(dir: &std::path::Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let file = cols.next()?.to_owned();
            let notes = cols.nth(3).unwrap_or_default().to_owned();
            Some((file, notes))
        })
        .collect()
}

fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("\n  {d}")).collect()
}

/// The problem each suspect-invalid file has: line, severity, and a
/// fragment of the message. Severity follows CodeBuild: what it rejects (or
/// what the reference marks required) is an error; keys it ignores with a
/// warning stay warnings, so those files are flagged but not refused.
const EXPECTED: &[(&str, u32, Severity, &str)] = &[
    (
        "016.yml",
        49,
        Severity::Error,
        "phases.pre_build.commands[2]: empty command",
    ),
    (
        "016.yml",
        55,
        Severity::Error,
        "phases.pre_build.commands[8]: empty command",
    ),
    (
        "025.yml",
        7,
        Severity::Error,
        "phase `build` has no `commands`",
    ),
    (
        "025.yml",
        8,
        Severity::Warning,
        "`steps` is GitHub Actions syntax",
    ),
    (
        "036.yml",
        6,
        Severity::Error,
        "phases.install.commands[0]: empty command",
    ),
    (
        "049.yml",
        11,
        Severity::Error,
        "phases.pre_build.commands[5]: empty command",
    ),
    (
        "050.yml",
        11,
        Severity::Error,
        "phases.pre_build.commands[5]: empty command",
    ),
    (
        "057.yml",
        22,
        Severity::Error,
        "phase `post_build` has no `commands`",
    ),
    (
        "057.yml",
        23,
        Severity::Warning,
        "`steps` is GitHub Actions syntax",
    ),
    ("094.yml", 1, Severity::Error, "unsupported version `0.0`"),
    ("102.yml", 1, Severity::Error, "missing `version`"),
    (
        "123.yml",
        9,
        Severity::Error,
        "env.variables.key: `key` is given twice",
    ),
    (
        "123.yml",
        12,
        Severity::Error,
        "env.parameter-store.key: `key` is given twice",
    ),
    (
        "126.yml",
        18,
        Severity::Warning,
        "did you mean `discard-paths`?",
    ),
    (
        "128.yml",
        6,
        Severity::Warning,
        "env.build: `build` is a phase name",
    ),
    (
        "144.yml",
        21,
        Severity::Error,
        "phases.build.commands[4]: expected a string, found a mapping — did you forget to quote a ':'?",
    ),
    ("145.yml", 3, Severity::Warning, "version 0.1 name of `env`"),
    ("146.yml", 3, Severity::Warning, "version 0.1 name of `env`"),
    (
        "152.yml",
        3,
        Severity::Warning,
        "env.environment: unknown key `environment`",
    ),
    (
        "155.yml",
        6,
        Severity::Warning,
        "`build-matrix` belongs under `batch:`",
    ),
    ("167.yml", 28, Severity::Error, "list items are not aligned"),
    (
        "168.yml",
        78,
        Severity::Error,
        "block scalar on line 78 is empty",
    ),
    ("169.yml", 41, Severity::Error, "YAML reads as an alias"),
];

#[test]
fn no_false_errors_on_real_buildspecs() {
    let dir = corpus_dir();
    let notes = manifest(&dir);
    assert!(
        notes.len() >= 100,
        "only {} files in the manifest",
        notes.len()
    );
    let mut failures = String::new();
    for (file, note) in &notes {
        if note.starts_with("suspect-invalid") {
            continue;
        }
        let diags = validate(&read(&dir, file));
        if diags.iter().any(|d| d.severity == Severity::Error) {
            failures.push_str(&format!("\n{file} ({note}):{}", render(&diags)));
        }
    }
    assert!(failures.is_empty(), "false errors:{failures}");
}

#[test]
fn every_suspect_invalid_file_has_its_expected_problem() {
    let dir = corpus_dir();
    let notes = manifest(&dir);
    let suspects: Vec<&String> = notes
        .iter()
        .filter(|(_, note)| note.starts_with("suspect-invalid"))
        .map(|(file, _)| file)
        .collect();
    for file in &suspects {
        assert!(
            EXPECTED.iter().any(|(f, ..)| f == file),
            "{file} is suspect-invalid but has no expectation here"
        );
    }
    for (file, line, severity, fragment) in EXPECTED {
        assert!(
            suspects.contains(&&(*file).to_owned()),
            "{file} is not suspect-invalid"
        );
        let diags = validate(&read(&dir, file));
        let found = diags.iter().any(|d| {
            d.line == *line && d.severity == *severity && d.to_string().contains(fragment)
        });
        assert!(
            found,
            "{file}: expected {severity} at line {line} containing {fragment:?}; got:{}",
            render(&diags)
        );
    }
}

#[test]
fn parameter_store_and_version_come_back_for_later_stages() {
    let dir = corpus_dir();
    let analysis = analyse(&read(&dir, "047.yml"));
    assert_eq!(analysis.version.as_deref(), Some("0.2"));
    assert_eq!(
        analysis.parameter_store,
        vec![
            ("SONARQUBE_TOKEN".to_owned(), "SonarQubeToken".to_owned()),
            (
                "SONARQUBE_ENDPOINT".to_owned(),
                "SonarQubeEndpoint".to_owned()
            ),
        ]
    );
    // Invalid (duplicate names): nothing for later stages.
    let analysis = analyse(&read(&dir, "123.yml"));
    assert!(analysis.parameter_store.is_empty(), "{analysis:?}");
    // Quirky encodings are read like any other file.
    for file in ["034.yml", "136.yml", "137.yml", "020.yml", "165.yml"] {
        assert_eq!(
            analyse(&read(&dir, file)).version.as_deref(),
            Some("0.2"),
            "{file}"
        );
    }
}

#[test]
fn diagnostics_are_sorted_by_line_and_column() {
    let dir = corpus_dir();
    for file in ["016.yml", "094.yml", "123.yml"] {
        let diags = validate(&read(&dir, file));
        assert!(
            diags
                .windows(2)
                .all(|w| (w[0].line, w[0].col) <= (w[1].line, w[1].col)),
            "{file}:{}",
            render(&diags)
        );
    }
}
