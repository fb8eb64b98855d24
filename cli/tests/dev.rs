//! `gantry dev` and `gantry send` as a user runs them: two processes, a
//! signed delivery over loopback, the event printed as it crosses the bus.

use std::path::Path;
use std::time::Duration;

mod common;

use common::{Dev, free_port, gantry};

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_push_sent_to_gantry_dev_goes_down_the_chain_to_a_status_and_a_chat_message() {
    // GitHub's contents API, on loopback, serving the example's buildspec.
    let github = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(
            "/repos/octo-org/widgets/contents/buildspec.yml",
        ))
        .and(wiremock::matchers::query_param(
            "ref",
            "9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070",
        ))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - cargo test\n",
        ))
        .mount(&github)
        .await;
    // … and its status API.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path_regex(
            "^/repos/octo-org/widgets/statuses/",
        ))
        .respond_with(wiremock::ResponseTemplate::new(201).set_body_string("{}"))
        .mount(&github)
        .await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut dev = Dev::start(&listen, &[], &github.uri());
    dev.wait_for("webhook listening", Duration::from_secs(120));

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/push.json");
    let send = |secret: &str, delivery: &str| {
        gantry()
            .args([
                "send",
                "--url",
                &format!("http://{listen}/github"),
                "--secret",
                secret,
                "--event",
                "push",
            ])
            .args(["--delivery", delivery])
            .arg(&example)
            .output()
            .expect("run gantry send")
    };
    let out = send("gantry-dev-secret", "5d1f0000-aaaa-4bbb-8ccc-000000000001");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gantry send failed: {answer}");
    assert!(answer.starts_with("202 "), "{answer}");
    assert!(answer.contains("\"accepted\""), "{answer}");

    let line = dev.wait_for("Build Requested", Duration::from_secs(20));
    assert!(line.contains("octo-org/widgets"), "{line}");
    assert!(line.contains("refs/heads/main"), "{line}");
    assert!(line.contains("9f2c1e4"), "{line}");
    assert!(
        line.contains("5d1f0000-aaaa-4bbb-8ccc-000000000001"),
        "{line}"
    );

    // The chain runs on: validated, secrets resolved, one build started in
    // moto's CodeBuild at the commit.
    let line = dev.wait_for("validate-buildspec:", Duration::from_secs(20));
    assert!(
        line.contains("valid, octo-org/widgets:buildspec.yml@9f2c1e4"),
        "{line}"
    );
    let line = dev.wait_for("inject-secrets:", Duration::from_secs(20));
    assert!(line.contains("resolved, no secrets needed"), "{line}");
    let line = dev.wait_for("start-build:", Duration::from_secs(20));
    assert!(
        line.contains("started gantry-dev:")
            && line.contains("source version 9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070"),
        "{line}"
    );

    // build-events posts the statuses (to GITHUB_API_URL, here the stub),
    // the emulator ends the build, and the chat route (the local sink)
    // hears about it.
    dev.wait_for("build-events: status pending", Duration::from_secs(20));
    let line = dev.wait_for("CodeBuild Build State Change", Duration::from_secs(20));
    assert!(line.contains("SUCCEEDED"), "{line}");
    let line = dev.wait_for("build-events: status success", Duration::from_secs(20));
    assert!(line.contains("1 message(s)"), "{line}");
    let line = dev.wait_for("sink: POST /chat/slack", Duration::from_secs(20));
    assert!(line.contains("octo-org/widgets"), "{line}");
    let statuses: Vec<String> = github
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.url.path()
                == "/repos/octo-org/widgets/statuses/9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070"
        })
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(statuses[1].contains("\"success\""), "{statuses:?}");

    // The same delivery again is a duplicate; a forged one is refused.
    let out = send("gantry-dev-secret", "5d1f0000-aaaa-4bbb-8ccc-000000000001");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("200 "),
        "{:?}",
        out
    );
    let out = send("not-the-secret", "5d1f0000-aaaa-4bbb-8ccc-000000000002");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("401 "),
        "{:?}",
        out
    );
}

#[test]
fn send_signs_form_deliveries_too_and_reports_unreadable_files() {
    let listen = format!("127.0.0.1:{}", free_port());
    // Nothing listens on the discard port: validate-buildspec fails and
    // says EventBridge would retry.
    let mut dev = Dev::start(&listen, &[], "http://127.0.0.1:9");
    dev.wait_for("webhook listening", Duration::from_secs(120));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/push.json");
    let out = gantry()
        .args([
            "send",
            "--form",
            "--url",
            &format!("http://{listen}/"),
            "--secret",
            "gantry-dev-secret",
            "--event",
            "push",
        ])
        .arg(&example)
        .output()
        .expect("run gantry send");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("202 "),
        "{out:?}"
    );
    dev.wait_for("Build Requested", Duration::from_secs(20));
    dev.wait_for(
        "validate-buildspec: failed (EventBridge would retry)",
        Duration::from_secs(20),
    );

    let out = gantry()
        .args([
            "send",
            "--url",
            "http://127.0.0.1:9/",
            "--secret",
            "s",
            "--event",
            "push",
            "/no/such/file.json",
        ])
        .output()
        .expect("run gantry send");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.json"));
}

/// Issue 11 as a user sees it in `gantry dev`: a pull request titled
/// `[skip ci] …` builds (its title never skips it), and the same signed
/// body sent again under a new delivery id starts nothing more.
#[tokio::test(flavor = "multi_thread")]
async fn a_skip_ci_title_builds_and_a_resent_signed_body_starts_nothing_more() {
    let github = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path_regex(
            "^/repos/Codertocat/Hello-World/contents/",
        ))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_string(
                "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n",
            ),
        )
        .mount(&github)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(201).set_body_string("{}"))
        .mount(&github)
        .await;
    let corpus = std::env::var_os("GANTRY_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    let text =
        std::fs::read_to_string(corpus.join("webhooks/10_pull_request__opened.payload.json"))
            .expect("the corpus pull request");
    let mut pr: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    pr["action"] = serde_json::json!("reopened");
    pr["pull_request"]["title"] = serde_json::json!("[skip ci] Update the README");
    let dir = std::env::temp_dir().join(format!("gantry-skip-ci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let payload = dir.join("pull_request.json");
    std::fs::write(&payload, serde_json::to_vec(&pr).expect("JSON")).expect("write payload");

    let listen = format!("127.0.0.1:{}", free_port());
    let mut dev = Dev::start(&listen, &[], &github.uri());
    dev.wait_for("webhook listening", Duration::from_secs(120));
    // `gantry send` gives every delivery a fresh id, as a replay would.
    let send = || {
        gantry()
            .args([
                "send",
                "--url",
                &format!("http://{listen}/"),
                "--secret",
                "gantry-dev-secret",
                "--event",
                "pull_request",
            ])
            .arg(&payload)
            .output()
            .expect("run gantry send")
    };
    let out = send();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.starts_with("202 ") && answer.contains("\"accepted\""),
        "{answer}"
    );
    let line = dev.wait_for("Build Requested", Duration::from_secs(20));
    assert!(line.contains("Codertocat/Hello-World"), "{line}");
    let line = dev.wait_for("start-build:", Duration::from_secs(30));
    assert!(line.contains("started gantry-dev:"), "{line}");

    let out = send();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.starts_with("200 ") && answer.contains("\"duplicate\""),
        "{answer}"
    );
    // Nothing more crosses the bus.
    dev.read_until(|_| false, Duration::from_secs(5));
    let requested = dev
        .seen
        .iter()
        .filter(|l| l.contains("Build Requested"))
        .count();
    assert_eq!(requested, 1, "{}", dev.seen.join("\n"));
    assert!(!dev.seen.iter().any(|l| l.contains("Build Skipped")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stopped by SIGTERM (a process manager, `kill`), not Ctrl-C: the moto
/// server it started stops too, instead of being left listening.
#[test]
fn sigterm_stops_gantry_dev_and_its_moto_server() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut dev = Dev::start(&listen, &[], "http://127.0.0.1:9");
    // The queues' URLs name moto's own address (the AWS endpoint printed
    // is the proxy in front of it, which lives in gantry dev's process).
    let queue = dev.wait_for("→ queue http://", Duration::from_secs(120));
    dev.wait_for("webhook listening", Duration::from_secs(120));
    let address = queue
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("moto's address")
        .to_owned();
    assert!(
        std::net::TcpStream::connect(&address).is_ok(),
        "moto answers at {address} while gantry dev runs"
    );
    let status = dev.terminate(Duration::from_secs(20));
    assert!(status.is_some(), "gantry dev did not exit on SIGTERM");
    // The moto server is gone with it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&address).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto still listens at {address} after gantry dev stopped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A scratch git repository for one test, with `git` run in it.
struct Repo {
    dir: std::path::PathBuf,
}

impl Repo {
    fn new(name: &str) -> Repo {
        let dir = std::env::temp_dir().join(format!("gantry-dev-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn git(&self, args: &[&str]) -> String {
        common::git(&self.dir, args)
    }

    /// Commits `buildspec` as buildspec.yml; the new commit's SHA.
    fn commit(&self, buildspec: &str, message: &str) -> String {
        std::fs::write(self.dir.join("buildspec.yml"), buildspec).expect("write");
        self.git(&["add", "."]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn path(&self) -> String {
        self.dir.display().to_string()
    }

    fn push(&self, listen: &str) {
        let out = gantry()
            .args(["send", "--url", &format!("http://{listen}/")])
            .args(["--secret", "gantry-dev-secret", "--push", "--repo"])
            .arg(&self.dir)
            .output()
            .expect("run gantry send");
        let answer = String::from_utf8_lossy(&out.stdout);
        assert!(answer.starts_with("202 "), "{answer}");
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// No GitHub and no AWS: gantry dev stands in for GitHub with the user's
/// own repository, `gantry send --push` sends their last commit, whose
/// buildspec (read at that commit, not the edited one) validates and runs
/// on this machine; the real result comes back as the commit's status, and
/// a secret from the local SSM is masked in the printed log and the kept
/// one.
#[tokio::test(flavor = "multi_thread")]
async fn offline_a_local_commit_is_validated_from_the_repository_built_and_reported() {
    let secret = "s3cr3t-offline-value-42";
    let api_key = "sm-offline-value-77";
    let repo = Repo::new("offline");
    let sha = repo.commit(
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /gantry/dev/token\n  secrets-manager:\n    API_KEY: /gantry/dev/api:key\nphases:\n  build:\n    commands:\n      - echo \"built $CODEBUILD_RESOLVED_SOURCE_VERSION offline\"\n      - echo \"token=$TOKEN\"\n      - echo \"api=$API_KEY\"\n",
        "offline",
    );
    // Uncommitted edits are not what the commit builds.
    std::fs::write(repo.dir.join("buildspec.yml"), "not: the committed one\n").expect("write");

    let listen = format!("127.0.0.1:{}", free_port());
    let parameter = format!("/gantry/dev/token={secret}");
    // A Secrets Manager secret, read by its JSON key.
    let api = format!("/gantry/dev/api={{\"key\": \"{api_key}\", \"other\": 1}}");
    let mut dev = Dev::start_offline(
        &listen,
        &[
            "--repo",
            &repo.path(),
            "--parameter",
            &parameter,
            "--secrets-manager",
            &api,
        ],
    );
    dev.wait_for("webhook listening", Duration::from_secs(120));
    let line = dev.wait_for("GitHub stands in on", Duration::from_secs(20));
    assert!(line.contains(&repo.path()), "{line}");

    repo.push(&listen);

    let short = &sha[..7];
    let line = dev.wait_for("validate-buildspec:", Duration::from_secs(30));
    assert!(
        line.contains("valid, local/") && line.contains(&format!(":buildspec.yml@{short}")),
        "{line}"
    );
    let line = dev.wait_for("start-build:", Duration::from_secs(30));
    assert!(line.contains(&format!("source version {sha}")), "{line}");
    let line = dev.wait_for("local build:", Duration::from_secs(30));
    let log_url = line
        .split("log ")
        .last()
        .expect("the log's address")
        .to_owned();
    dev.wait_for(&format!("built {sha} offline"), Duration::from_secs(30));
    dev.wait_for("token=***", Duration::from_secs(30));
    dev.wait_for("api=***", Duration::from_secs(30));
    let line = dev.wait_for("codebuild: gantry-dev:", Duration::from_secs(30));
    assert!(line.contains("SUCCEEDED"), "{line}");
    let line = dev.wait_for("build-events: status success", Duration::from_secs(60));
    assert!(line.contains("1 message(s)"), "{line}");
    let status = dev
        .seen
        .iter()
        .rfind(|l| l.contains("sink: POST /repos/local/gantry-dev-offline-"))
        .cloned()
        .unwrap_or_default();
    assert!(status.contains(&format!("/statuses/{sha}")), "{status}");
    assert!(status.contains("\"success\""), "{status}");

    // The kept log, as linked: masked too.
    let log = reqwest::get(&log_url)
        .await
        .expect("GET the log")
        .text()
        .await
        .expect("the log's text");
    assert!(
        log.contains(&format!("[BUILD] built {sha} offline")),
        "{log}"
    );
    assert!(log.contains("[BUILD] token=***"), "{log}");
    assert!(!log.contains(secret), "{log}");

    // The build's page, as printed with the build: its result and the same
    // masked log, read back from CloudWatch Logs as the deployed page does.
    let line = dev.wait_for("build page: ", Duration::from_secs(10));
    let page_url = line
        .split("build page: ")
        .last()
        .expect("the page's link")
        .trim()
        .to_owned();
    assert!(
        page_url.starts_with(&format!("http://{listen}/builds/gantry-dev/")),
        "{page_url}"
    );
    let page = reqwest::get(&page_url).await.expect("GET the page");
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    let page = page.text().await.expect("the page");
    assert!(page.contains("✓</span> passed"), "{page}");
    assert!(page.contains(&format!("built {sha} offline")), "{page}");
    assert!(page.contains("token=***"), "{page}");
    assert!(!page.contains(secret), "{page}");
    // A changed link opens nothing.
    let tampered = page_url.replace("sig=", "sig=0");
    assert_eq!(reqwest::get(&tampered).await.expect("GET").status(), 403);

    assert!(!log.contains(api_key), "{log}");
    assert!(
        dev.seen
            .iter()
            .all(|l| !l.contains(secret) && !l.contains(api_key)),
        "the secret was printed"
    );
}

/// A newer commit of the branch while a build runs: start-build stops the
/// older build, the local executor kills what it runs (it would sleep a
/// minute), the older commit's status says it was superseded, and the newer
/// one builds to success.
#[test]
fn a_newer_commit_stops_the_running_build_of_the_older() {
    let repo = Repo::new("supersede");
    let older = repo.commit(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo long build started\n      - sleep 120\n",
        "slow",
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let mut dev = Dev::start_offline(&listen, &["--repo", &repo.path()]);
    dev.wait_for("webhook listening", Duration::from_secs(120));
    repo.push(&listen);
    dev.wait_for("long build started", Duration::from_secs(60));
    let older_build = dev
        .seen
        .iter()
        .find_map(|l| l.split("local build: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .expect("the older build's id")
        .to_owned();

    let newer = repo.commit(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo quick build\n",
        "quick",
    );
    repo.push(&listen);
    dev.wait_for(
        &format!("local build: {older_build} stopped"),
        Duration::from_secs(60),
    );
    let line = dev.wait_for(
        &format!("codebuild: {older_build}"),
        Duration::from_secs(30),
    );
    assert!(
        line.contains("STOPPED") && line.contains("(in BUILD)"),
        "{line}"
    );
    dev.wait_for("quick build", Duration::from_secs(60));
    dev.wait_for("build-events: status success", Duration::from_secs(60));
    let statuses: Vec<&String> = dev
        .seen
        .iter()
        .filter(|l| l.contains("sink: POST /repos/") && l.contains("/statuses/"))
        .collect();
    assert!(
        statuses
            .iter()
            .any(|l| l.contains(&format!("/statuses/{older}"))
                && l.contains(&format!("superseded by {}", &newer[..7]))),
        "{statuses:#?}"
    );
    assert!(
        statuses
            .iter()
            .any(|l| l.contains(&format!("/statuses/{newer}")) && l.contains("\"success\"")),
        "{statuses:#?}"
    );
}

/// gantry dev stopped (SIGTERM) while a build runs: what the build started
/// is killed with it, not left running on the machine.
#[test]
fn stopping_gantry_dev_kills_the_build_it_runs() {
    let repo = Repo::new("stop-running");
    let pid_file = repo.dir.with_extension("pid");
    let _ = std::fs::remove_file(&pid_file);
    repo.commit(
        &format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - sh -c 'echo $$ > {}; exec sleep 300' &\n      - echo long build started\n      - wait\n",
            pid_file.display()
        ),
        "long",
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let mut dev = Dev::start_offline(&listen, &["--repo", &repo.path()]);
    dev.wait_for("webhook listening", Duration::from_secs(120));
    repo.push(&listen);
    dev.wait_for("long build started", Duration::from_secs(60));
    // The background sleep writes its pid as the build goes on.
    let mut pid = String::new();
    for _ in 0..100 {
        pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_owned();
        if !pid.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!pid.is_empty(), "the build's sleep did not write its pid");
    // Running, not a zombie waiting for a reaper: the third field of
    // /proc/<pid>/stat is its state.
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(|state| state != "Z" && state != "X")
            })
            .unwrap_or(false)
    };
    assert!(alive(&pid), "the build's sleep runs");
    let status = dev.terminate(Duration::from_secs(30));
    assert!(status.is_some(), "gantry dev did not exit on SIGTERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(&pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the build's sleep ({pid}) outlived gantry dev"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = std::fs::remove_file(&pid_file);
}

/// App mode offline: `gantry dev --github-app-id --github-app-key` runs
/// the functions as the App against the stand-in, which checks each JWT
/// with the key's public half and each installation token's repository and
/// permission. A local commit becomes one check run: queued, in progress,
/// completed success; no commit status.
#[test]
fn offline_app_mode_reports_a_commit_as_one_check_run() {
    let repo = Repo::new("app-mode");
    let sha = repo.commit(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built as an App\n",
        "app mode",
    );
    let (listen, mut dev) = app_mode_dev(&repo);
    dev.wait_for("GitHub App mode (App 4242)", Duration::from_secs(20));
    repo.push(&listen);
    dev.wait_for("github: check run #1 ", Duration::from_secs(60));
    dev.wait_for("built as an App", Duration::from_secs(60));
    let done = dev.wait_for("completed success", Duration::from_secs(60));
    assert!(done.contains("check run #1 "), "{done}");
    let runs: Vec<&String> = dev
        .seen
        .iter()
        .filter(|l| l.contains("github: check run #"))
        .collect();
    assert!(
        runs.iter().all(|l| l.contains("check run #1 ")),
        "one run for the commit: {runs:#?}"
    );
    assert!(runs.iter().any(|l| l.contains(" queued")), "{runs:#?}");
    assert!(runs.iter().any(|l| l.contains(" in_progress")), "{runs:#?}");
    // Tokens were issued, scoped, and never refused.
    assert!(
        dev.seen
            .iter()
            .any(|l| l.contains("token for gantry-dev-app-mode-") && l.contains("→ 201")),
        "{:#?}",
        dev.seen
    );
    assert!(
        dev.seen
            .iter()
            .all(|l| !l.contains("→ 401") && !l.contains("→ 403")),
        "{:#?}",
        dev.seen
    );
    assert!(
        dev.seen
            .iter()
            .all(|l| !l.contains(&format!("/statuses/{sha}"))),
        "App mode posted a status"
    );
    assert!(
        dev.seen.iter().all(|l| !l.contains("PRIVATE KEY")),
        "the key was printed"
    );
}

/// Cancel, offline, in App mode: the button's `check_run` delivery (the
/// corpus's, pointed at the running build's run) reaches build-events,
/// whose StopBuild stops the build this machine runs; its run completes
/// cancelled.
#[test]
fn offline_app_mode_cancel_stops_the_local_build() {
    let repo = Repo::new("app-cancel");
    repo.commit(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo long build started\n      - sleep 120\n",
        "slow",
    );
    let (listen, mut dev) = app_mode_dev(&repo);
    repo.push(&listen);
    let requested = dev.wait_for("Build Requested", Duration::from_secs(60));
    let correlation_id = requested
        .split("correlation_id=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the delivery's correlation id")
        .to_owned();
    dev.wait_for("long build started", Duration::from_secs(60));
    dev.wait_for(" in_progress", Duration::from_secs(30));

    let corpus = std::env::var_os("GANTRY_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    let delivery = corpus.join("webhooks/42_check_run__requested_action.payload.json");
    let mut press: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&delivery).expect("corpus delivery")).expect("JSON");
    let name = repo
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("the repository's name")
        .to_owned();
    press["repository"]["full_name"] = format!("local/{name}").into();
    press["repository"]["name"] = name.into();
    press["check_run"]["external_id"] = format!("{correlation_id}/gantry-dev").into();
    press["requested_action"]["identifier"] = "gantry-cancel".into();
    let file = repo.dir.with_extension("press.json");
    std::fs::write(&file, serde_json::to_vec(&press).expect("JSON")).expect("write");
    let out = gantry()
        .args(["send", "--url", &format!("http://{listen}/")])
        .args(["--secret", "gantry-dev-secret", "--event", "check_run"])
        .arg(&file)
        .output()
        .expect("run gantry send");
    let _ = std::fs::remove_file(&file);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.starts_with("202 "), "{answer}");

    let line = dev.wait_for(" stopped", Duration::from_secs(60));
    assert!(line.contains("local build: "), "{line}");
    dev.wait_for("completed cancelled", Duration::from_secs(60));
}

/// `gantry dev` offline as App 4242 (the test key) on `repo`, listening.
fn app_mode_dev(repo: &Repo) -> (String, Dev) {
    let key = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/test-only-app-key.pem")
        .display()
        .to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut dev = Dev::start_offline(
        &listen,
        &[
            "--repo",
            &repo.path(),
            "--github-app-id",
            "4242",
            "--github-app-key",
            &key,
        ],
    );
    dev.wait_for("webhook listening", Duration::from_secs(120));
    (listen, dev)
}

/// A failed build offline, in App mode: the local build's log goes where
/// CodeBuild keeps logs (CloudWatch Logs, in moto), so its check run shows
/// the failed phase's end and annotates the compiler line it names, as
/// when deployed.
#[test]
fn offline_app_mode_a_failed_build_shows_its_log_in_the_run() {
    let repo = Repo::new("app-failed");
    repo.commit(
        "version: 0.2\nphases:\n  install:\n    commands:\n      - echo installing\n  build:\n    commands:\n      - \"echo 'src/lib.rs:3:5: error: mismatched types'\"\n      - exit 3\n",
        "failing",
    );
    let (listen, mut dev) = app_mode_dev(&repo);
    repo.push(&listen);
    let done = dev.wait_for("completed failure", Duration::from_secs(90));
    // The annotation can only have come from the log CloudWatch kept.
    assert!(done.contains("(+1 annotations)"), "{done}");
    assert!(done.contains("(log: "), "{done}");
    assert!(done.contains("COMMAND_EXECUTION_ERROR"), "{done}");
}

/// The environment a printed `NAME=value … gantry …` command line sets.
fn printed_env(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .filter(|(name, _)| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Issue 16 offline: `gantry run` and `gantry tick`, with the environment
/// `gantry dev` prints, start builds of the local repository's branch
/// head (trigger manual, with a --var; then a schedule's), which run on
/// this machine and are reported as a push's are.
#[test]
fn offline_a_manual_run_and_a_ticked_schedule_build_the_branch_head() {
    let repo = Repo::new("triggers");
    let sha = repo.commit(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"ran $GANTRY_TRIGGER $CODEBUILD_RESOLVED_SOURCE_VERSION level=$LEVEL\"\n",
        "triggers",
    );
    let name = repo
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a name")
        .to_owned();
    let full = format!("local/{name}");
    let config = repo.dir.with_extension("gantry.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nrepositories:\n  - name: {full}\n    project: gantry-dev\n    schedules:\n      - name: nightly\n        cron: '0 3 * * *'\ndev:\n  webhook-secret: gantry-dev-secret\n"
        ),
    )
    .expect("write the configuration");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut dev = Dev::start_offline(
        &listen,
        &[
            "--repo",
            &repo.path(),
            "--config",
            &config.display().to_string(),
        ],
    );
    dev.wait_for("webhook listening", Duration::from_secs(120));
    let run_line = dev.wait_for("run a build by hand:", Duration::from_secs(20));
    let tick_line = dev.wait_for("tick the schedules by hand:", Duration::from_secs(20));
    dev.wait_for("1 schedule(s) in the configuration", Duration::from_secs(5));
    let aws = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];

    let out = gantry()
        .args(["run", &full, "--ref", "main", "--var", "LEVEL=full"])
        .envs(printed_env(&run_line))
        .envs(aws)
        .env_remove("GITHUB_TOKEN")
        .output()
        .expect("run gantry run");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&format!("@{}", &sha[..12])), "{said}");
    assert!(said.contains("attempt 1"), "{said}");
    dev.wait_for(
        &format!("ran manual {sha} level=full"),
        Duration::from_secs(60),
    );
    dev.read_until(
        |seen| {
            seen.iter()
                .any(|l| l.contains("build-events: status success"))
        },
        Duration::from_secs(60),
    );
    assert!(
        dev.line_with("build-events: status success").is_some(),
        "{}",
        dev.seen.join("\n")
    );

    // A minute the schedule does not fire in, then one it does.
    let tick = |at: &str| {
        gantry()
            .args(["tick", "--at", at])
            .envs(printed_env(&tick_line))
            .output()
            .expect("run gantry tick")
    };
    let quiet = tick("2026-01-05T02:59:00Z");
    assert!(
        String::from_utf8_lossy(&quiet.stdout).contains("no schedule fires"),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let fired = tick("2026-01-05T03:00:30Z");
    let said = String::from_utf8_lossy(&fired.stdout);
    assert!(fired.status.success(), "{said}");
    assert!(said.contains("Requested"), "{said}");
    dev.wait_for(&format!("ran schedule {sha}"), Duration::from_secs(60));
    let _ = std::fs::remove_file(&config);
}
