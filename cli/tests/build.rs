//! `gantry build` as a user runs it before pushing: a commit of their
//! repository built the way CodeBuild builds it, and the exit code says
//! how it ended (0 succeeded, 1 failed, 2 could not run).

mod common;

use common::git;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A repository whose one commit holds `files`.
fn repository(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-build-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    git(&dir, &["init", "-q", "-b", "main"]);
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("write");
    }
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "first"]);
    dir
}

fn gantry_build(repo: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("build")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("XDG_CACHE_HOME", repo.join(".cache-for-logs"))
        .output()
        .expect("run gantry build");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PASSING: &str = "\
version: 0.2
phases:
  pre_build:
    commands:
      - test -f Makefile
  build:
    commands:
      - echo \"built $(cat VERSION) at $CODEBUILD_RESOLVED_SOURCE_VERSION\"
";

#[test]
fn a_passing_build_of_the_commit_exits_0_and_prints_its_log() {
    let repo = repository(
        "pass",
        &[
            ("buildspec.yml", PASSING),
            ("Makefile", "all:\n"),
            ("VERSION", "1.2.3\n"),
        ],
    );
    // Uncommitted work is not in the build: it is of the commit.
    std::fs::write(repo.join("VERSION"), "dirty\n").expect("write");
    let (code, out, err) = gantry_build(&repo, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let sha = String::from_utf8_lossy(
        &Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .expect("git")
            .stdout,
    )
    .trim()
    .to_owned();
    assert!(
        out.contains(&format!("[BUILD] built 1.2.3 at {sha}")),
        "{out}"
    );
    assert!(out.contains("SUCCEEDED"), "{out}");
}

#[test]
fn a_failing_build_exits_1_and_names_the_phase() {
    let repo = repository(
        "fail",
        &[(
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo testing\n      - exit 7\n  post_build:\n    commands:\n      - echo reported\n",
        )],
    );
    let (code, out, err) = gantry_build(&repo, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("FAILED in BUILD"), "{out}");
    assert!(out.contains("exit status 7"), "{out}");
    assert!(out.contains("[POST_BUILD] reported"), "{out}");
}

#[test]
fn a_buildspec_codebuild_would_refuse_fails_before_anything_runs() {
    let repo = repository(
        "refused",
        &[(
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo: oops\n",
        )],
    );
    let (code, out, err) = gantry_build(&repo, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("buildspec.yml:5:"), "{out}");
    assert!(out.contains("DOWNLOAD_SOURCE"), "{out}");
}

#[test]
fn what_cannot_run_exits_2_with_the_reason() {
    let repo = repository(
        "cannot",
        &[(
            "buildspec.yml",
            "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /gantry/dev/token\nphases:\n  build:\n    commands:\n      - echo hi\n",
        )],
    );
    let (code, _, err) = gantry_build(&repo, &["--ref", "no-such-branch"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no-such-branch"), "{err}");

    let (code, _, err) = gantry_build(&repo, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--parameter /gantry/dev/token=VALUE"), "{err}");

    let (code, out, err) = gantry_build(&repo, &["--parameter", "/gantry/dev/token=abc"]);
    assert_eq!(code, Some(0), "{out}{err}");
}

fn corpus_buildspec(name: &str) -> PathBuf {
    let root = std::env::var_os("GANTRY_CORPUS").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus")),
        PathBuf::from,
    );
    let file = root.join("buildspecs").join(name);
    assert!(
        file.is_file(),
        "{} not found: set GANTRY_CORPUS to the shared corpus",
        file.display()
    );
    file
}

/// Real buildspecs from the corpus whose commands need nothing this
/// machine lacks, run as `gantry build --buildspec` against a small
/// repository: each ends as CodeBuild documents it would.
#[test]
fn the_corpus_runnable_buildspecs_end_as_codebuild_ends_them() {
    let repo = repository("corpus", &[("README.md", "corpus\n")]);
    let run = |name: &str, extra: &[&str]| {
        let file = corpus_buildspec(name);
        let mut args = vec!["--buildspec", file.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        gantry_build(&repo, &args)
    };

    // 020: empty `commands:` in pre_build and post_build (null, which
    // CodeBuild accepts), and a build that is a no-op without ./gradlew.
    let (code, out, err) = run("020.yml", &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("<== BUILD SUCCEEDED"), "{out}");

    // 025: GitHub Actions `steps` in a buildspec: CodeBuild refuses the
    // file (YAML_FILE_ERROR in DOWNLOAD_SOURCE); so does gantry build.
    let (code, out, _) = run("025.yml", &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("steps"), "{out}");
    assert!(out.contains("FAILED in DOWNLOAD_SOURCE"), "{out}");

    // 052: no phases at all; `exported-variables` exports a CODEBUILD_
    // variable, which has the build's id.
    let (code, out, err) = run("052.yml", &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("exported CODEBUILD_BUILD_ID=gantry-dev:"),
        "{out}"
    );

    // 123: a template with duplicate keys: refused before anything runs.
    let (code, out, _) = run("123.yml", &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED in DOWNLOAD_SOURCE"), "{out}");
    assert!(!out.contains("==> INSTALL"), "{out}");

    // 165: bash, and `git checkout` in the source directory, which
    // CodeBuild's GitHub checkout is a clone of (an archive would fail
    // here: not a git repository); DOCKER_TAG exported.
    let (code, out, err) = run("165.yml", &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Docker tag: "), "{out}");
    assert!(out.contains("exported DOCKER_TAG="), "{out}");
}

/// `--executor docker`: the same build in a container of an image already
/// here (scripts/test makes one when it can start Docker); an image that is
/// not here is not pulled: exit 2, saying how to get it.
#[test]
fn the_docker_executor_builds_in_the_image_and_pulls_nothing() {
    let Some(image) = std::env::var("GANTRY_DOCKER_IMAGE")
        .ok()
        .filter(|i| !i.is_empty())
    else {
        eprintln!("docker executor test not run: GANTRY_DOCKER_IMAGE is not set");
        return;
    };
    let repo = repository(
        "docker",
        &[
            ("VERSION", "4.2\n"),
            (
                "buildspec.yml",
                "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"built $(cat VERSION) with PATH=$PATH\"\n",
            ),
        ],
    );
    let (code, out, err) = gantry_build(&repo, &["--executor", "docker", "--image", &image]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("[BUILD] built 4.2 with PATH=/bin"), "{out}");

    let (code, out, err) = gantry_build(
        &repo,
        &["--executor", "docker", "--image", "gantry-test/absent:0"],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("docker pull gantry-test/absent:0"), "{err}");
}
