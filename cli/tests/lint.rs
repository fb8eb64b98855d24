//! `gantry lint` as a pre-commit hook runs it: the report, and exit codes
//! 0 (clean), 1 (errors), 2 (a file that cannot be read).

use std::path::PathBuf;
use std::process::Command;

fn gantry_lint(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("lint")
        .args(args)
        .output()
        .expect("run gantry lint");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-lint-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("write");
    }
    dir
}

#[test]
fn reports_line_column_and_exits_by_severity() {
    let dir = scratch(
        "a",
        &[
            (
                "good.yml",
                "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n",
            ),
            (
                "bad.yml",
                "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n      - echo: oops\n",
            ),
            (
                "gantry.yaml",
                "version: 1\nrepositories:\n  - name: a/b\n    project: p\n    brnaches: [main]\n",
            ),
        ],
    );
    let good = dir.join("good.yml");
    let bad = dir.join("bad.yml");
    let config = dir.join("gantry.yaml");
    let (code, out) = gantry_lint(&[good.to_str().unwrap_or_default()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.ends_with("1 file checked: 0 errors, 0 warnings\n"),
        "{out}"
    );

    let (code, out) = gantry_lint(&[
        good.to_str().unwrap_or_default(),
        bad.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "{}:6:9: error: phases.build.commands[1]",
            bad.display()
        )),
        "{out}"
    );

    let (code, out) = gantry_lint(&[config.to_str().unwrap_or_default()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(":5:5: error: repositories[0].brnaches: unknown key"),
        "{out}"
    );

    let (code, out) = gantry_lint(&["--format", "json", bad.to_str().unwrap_or_default()]);
    assert_eq!(code, Some(1));
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(json[0]["line"], 6);
    assert_eq!(json[0]["col"], 9);
    assert_eq!(json[0]["severity"], "error");
    assert_eq!(json[0]["path"], "phases.build.commands[1]");

    let (code, _) = gantry_lint(&[good.to_str().unwrap_or_default(), "/no/such/buildspec.yml"]);
    assert_eq!(code, Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_repository_buildspecs_pass() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../buildspecs");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("buildspecs/")
        .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
        .filter(|p| p.ends_with(".yml"))
        .collect();
    assert!(!files.is_empty());
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, out) = gantry_lint(&args);
    assert_eq!(code, Some(0), "{out}");
}
