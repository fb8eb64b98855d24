//! `scripts/try --once`, the README's first command, as a new user runs it:
//! no GitHub and no AWS; the sample repository's commit is pushed through
//! the local stack, built on this machine, and its final status decides the
//! exit code.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::free_port;

fn try_sample(extra: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Command::new(root.join("scripts/try"))
        .arg("--once")
        .args(extra)
        .current_dir(&root)
        .env("GANTRY_BIN", env!("CARGO_BIN_EXE_gantry"))
        .env("GANTRY_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("GITHUB_API_URL")
        .env_remove("GITHUB_TOKEN")
        .output()
        .expect("run scripts/try")
}

#[test]
fn the_sample_builds_here_and_its_commit_succeeds() {
    let out = try_sample(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // The chain, in order: accepted, validated, resolved, started, the
    // build's own output, its end, the status and the chat message.
    let steps = [
        "\"accepted\"",
        "validate-buildspec: valid, local/sample:buildspec.yml@",
        "inject-secrets: resolved",
        "start-build: started gantry-dev:",
        "BUILD] ok: hello, Gantry!",
        "POST_BUILD] post_build sees NAME=Gantry; build succeeding=1",
        "SUCCEEDED after",
        "sink: POST /chat/slack",
        "==> final:  build-events: status success",
    ];
    let mut from = 0;
    for step in steps {
        let at = text[from..]
            .find(step)
            .unwrap_or_else(|| panic!("`{step}` not after byte {from}:\n{text}"));
        from += at;
    }
}

#[test]
fn the_failing_sample_fails_in_build_with_a_link_to_its_page() {
    let out = try_sample(&["--failing"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("BUILD] FAIL: expected 'hello, Gantry!', got 'hello, Jenkins!'"),
        "{text}"
    );
    // post_build still ran, knowing the build is failing.
    assert!(text.contains("build succeeding=0"), "{text}");
    let status = text
        .lines()
        .find(|l| l.starts_with("==> status:"))
        .unwrap_or_default();
    assert!(status.contains("\"state\":\"failure\""), "{text}");
    assert!(status.contains("failed in BUILD"), "{status}");
    // The link is the build's page, signed, opening at the first error;
    // the log is kept on this machine too.
    let url = status
        .split("\"target_url\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    let uuid = url
        .split("/builds/gantry-dev/")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .unwrap_or_default();
    assert!(
        !uuid.is_empty() && url.contains("&sig=") && url.ends_with("#first-error"),
        "{status}"
    );
    let name = format!("gantry-dev-{uuid}.log");
    let home = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .expect("a cache directory");
    let log = std::fs::read_to_string(home.join("gantry/builds").join(&name)).expect("the log");
    assert!(log.contains("[BUILD] FAIL: expected"), "{log}");
    // The chat message links the same page (not CodeBuild's placeholder).
    let chat = text
        .lines()
        .find(|l| l.contains("sink: POST /chat/slack"))
        .unwrap_or_default();
    assert!(chat.contains(url), "{chat}");
    assert!(chat.contains("Failed phase*\\nBUILD"), "{chat}");
}
