//! `gantry send --push`'s delivery: what GitHub would send for a push of a
//! local repository's commit, read back by the webhook's own parser.

use std::path::{Path, PathBuf};
use std::process::Command;

use gantry_core::github::normalise::{Normalised, normalise_push};
use gantry_core::github::payload::PushEvent;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Mona Lisa",
            "-c",
            "user.email=mona@example.com",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn repository(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-push-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    git(&dir, &["init", "-q", "-b", "main"]);
    dir
}

fn commit(dir: &Path, files: &[(&str, Option<&str>)], message: &str) -> String {
    for (file, text) in files {
        match text {
            Some(text) => {
                let path = dir.join(file);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).expect("dirs");
                }
                std::fs::write(path, text).expect("write")
            }
            None => std::fs::remove_file(dir.join(file)).expect("remove"),
        }
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn a_push_of_head_has_its_real_shas_commits_and_changed_paths() {
    let repo = repository("two");
    let first = commit(
        &repo,
        &[
            ("buildspec.yml", Some("version: 0.2\n")),
            ("old.txt", Some("x")),
        ],
        "first",
    );
    let second = commit(
        &repo,
        &[("src/lib.rs", Some("fn main() {}\n")), ("old.txt", None)],
        "second: the library",
    );
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "git@github.com:octo-org/widgets.git",
        ],
    );

    let payload = gantry_cli::push::payload(&repo, "HEAD", 1_764_600_000).expect("a payload");
    assert_eq!(payload["before"], first.as_str());
    assert_eq!(payload["after"], second.as_str());
    assert_eq!(payload["ref"], "refs/heads/main");
    let text = payload.to_string();
    let event: PushEvent<'_> = serde_json::from_str(&text).expect("GitHub's shape");
    let Normalised::Build(source) = normalise_push(&event).expect("normalises") else {
        panic!("a push of a branch builds")
    };
    assert_eq!(source.commit_sha, second.as_str());
    assert_eq!(source.repository.full_name, "octo-org/widgets");
    assert_eq!(source.branch.as_deref(), Some("main"));
    let mut paths = source.changed_paths.paths.clone();
    paths.sort();
    assert_eq!(paths, ["old.txt", "src/lib.rs"]);
    assert_eq!(
        source.head_commit.as_ref().map(|c| c.message.as_str()),
        Some("second: the library")
    );
}

#[test]
fn the_first_commit_of_a_repository_is_a_created_branch() {
    let repo = repository("one");
    let only = commit(&repo, &[("README.md", Some("hi\n"))], "only");
    let payload = gantry_cli::push::payload(&repo, "main", 1_764_600_000).expect("a payload");
    assert_eq!(
        payload["before"],
        "0000000000000000000000000000000000000000"
    );
    assert_eq!(payload["after"], only.as_str());
    assert_eq!(payload["created"], true);
    assert!(
        payload["repository"]["full_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("local/")),
        "{payload}"
    );
}
