//! App mode through the whole chain: a real push delivery (corpus 07, App
//! installation 1) on the moto stack, GitHub on loopback (wiremock). The
//! functions sign in as the App (JWT for an installation token scoped to
//! the one repository and permission), read the buildspec with it, and
//! report each moment as one check run: created queued at accept, then in
//! progress, then completed; never a commit status beside it, never
//! backwards, and a creation whose answer was lost is found, not repeated.

use gantry_aws::check_runs::{self, Moment, Outcome};
use gantry_aws::github::credentials::AppSettings;
use gantry_core::events::{BuildHeld, BuildRequested, BuildStarted, Detail};
use gantry_e2e::{
    LocalStack, RecordingProxy, SECRET, capture_logs, codebuild_event, corpus_file, github_headers,
};
use gantry_local::functions::{GitHubUrls, LocalFunctions};
use gantry_local::stack::{self, names};
use serde_json::{Value, json};
use wiremock::matchers::{header, header_regex, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Where the build pages are (the links are signed; nothing is served).
const PAGES: &str = "https://pages.example";
const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const REPO: &str = "/repos/Codertocat/Hello-World";
const APP_ID: u64 = 4242;
/// What the stub GitHub issues: never in a log line.
const INSTALLATION_TOKEN: &str = "ghs_appModeInstallationToken000000000042";
const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";

fn key_pem() -> String {
    std::fs::read_to_string(gantry_e2e::workspace().join("tests/fixtures/test-only-app-key.pem"))
        .expect("the test App key")
}

struct World {
    local: LocalStack,
    /// Everything the functions ask AWS passes here (StopBuild included,
    /// which moto does not keep).
    proxy: RecordingProxy,
    functions: LocalFunctions,
    webhook: gantry_webhook::Deps,
    github: MockServer,
}

impl World {
    /// `existing`: the check runs GitHub already lists on the commit.
    async fn start(buildspec: &str, existing: Value) -> World {
        World::with_config(&gantry_e2e::every_push_config(""), buildspec, existing).await
    }

    async fn with_config(config: &str, buildspec: &str, existing: Value) -> World {
        let local = LocalStack::start(config).await;
        aws_sdk_ssm::Client::new(&local.sdk)
            .put_parameter()
            .name(names::GITHUB_APP_KEY_PARAMETER)
            .value(key_pem())
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("store the App key");
        let github = MockServer::start().await;
        let as_app = header_regex(
            "authorization",
            "^Bearer eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$",
        );
        let as_installation = || {
            header(
                "authorization",
                format!("Bearer {INSTALLATION_TOKEN}").as_str(),
            )
        };
        Mock::given(method("POST"))
            .and(path("/app/installations/1/access_tokens"))
            .and(as_app)
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "token": INSTALLATION_TOKEN,
                "expires_at": "2099-01-01T00:00:00Z",
            })))
            .mount(&github)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{REPO}/contents/buildspec.yml")))
            .and(as_installation())
            .respond_with(ResponseTemplate::new(200).set_body_string(buildspec))
            .mount(&github)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{REPO}/commits/{SHA}/check-runs")))
            .and(as_installation())
            .respond_with(ResponseTemplate::new(200).set_body_json(existing))
            .mount(&github)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("{REPO}/check-runs")))
            .and(as_installation())
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 901})))
            .mount(&github)
            .await;
        Mock::given(method("PATCH"))
            .and(path_regex(format!("^{REPO}/check-runs/[0-9]+$")))
            .and(as_installation())
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&github)
            .await;
        // Who may press: trina has Triage (can label, cannot push), mona
        // maintains.
        for (login, permission, role) in
            [("trina", "read", "triage"), ("mona", "write", "maintain")]
        {
            Mock::given(method("GET"))
                .and(path(format!("{REPO}/collaborators/{login}/permission")))
                .and(as_installation())
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"permission": permission, "role_name": role})),
                )
                .mount(&github)
                .await;
        }
        Mock::given(method("POST"))
            .and(path_regex(format!("^{REPO}/statuses/")))
            .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
            .mount(&github)
            .await;
        let proxy = RecordingProxy::start(local.moto.endpoint(), true)
            .await
            .expect("proxy");
        let sdk = stack::sdk_config(proxy.endpoint()).await;
        let functions = LocalFunctions::new(
            &sdk,
            &GitHubUrls {
                contents_api: &github.uri(),
                with_token: false,
                statuses_api: &github.uri(),
                app: Some(app()),
                page_url: Some(PAGES),
            },
        )
        .expect("functions");
        let webhook = stack::webhook_settings(&[])
            .expect("settings")
            .deps(&local.sdk);
        World {
            local,
            proxy,
            functions,
            webhook,
            github,
        }
    }

    async fn push(&self, delivery: &str) {
        self.deliver(
            "push",
            delivery,
            &corpus_file("07_push__with-new-branch.payload.json"),
        )
        .await;
    }

    async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) {
        let headers = github_headers(event, delivery, body, SECRET);
        let reply = gantry_webhook::handle(&self.webhook, &headers, body).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }

    /// GitHub's `check_run` delivery (corpus 41 or 42) about the run of
    /// `delivery`'s build, from `sender`: `action` None is a Re-run.
    async fn press(&self, delivery: &str, run_of: &str, sender: &str, action: Option<&str>) {
        self.press_in("Codertocat/Hello-World", delivery, run_of, sender, action)
            .await;
    }

    /// [`Self::press`], as a delivery about repository `repo`.
    async fn press_in(
        &self,
        repo: &str,
        delivery: &str,
        run_of: &str,
        sender: &str,
        action: Option<&str>,
    ) {
        let file = match action {
            None => "41_check_run__rerequested.payload.json",
            Some(_) => "42_check_run__requested_action.payload.json",
        };
        let mut v: Value = serde_json::from_slice(&corpus_file(file)).expect("corpus JSON");
        v["check_run"]["external_id"] = json!(format!("{run_of}/gantry-dev"));
        v["check_run"]["head_sha"] = json!(SHA);
        v["repository"]["full_name"] = json!(repo);
        v["installation"]["id"] = json!(1);
        v["sender"]["login"] = json!(sender);
        if let Some(identifier) = action {
            v["requested_action"]["identifier"] = json!(identifier);
        }
        let body = serde_json::to_vec(&v).expect("JSON");
        self.deliver("check_run", delivery, &body).await;
    }

    /// Runs the chain until quiet, then lets CodeBuild's final state
    /// event reach build-events.
    async fn run(&self) -> Vec<gantry_local::tap::Observed> {
        let logged = self.local.pump(&self.functions).await;
        self.functions.progress().await;
        logged
    }

    /// build-events as the App, for handing it an event directly.
    fn events_deps(&self) -> gantry_build_events::Deps {
        stack::build_events_settings(&[
            ("GITHUB_API_URL", &self.github.uri()),
            ("GITHUB_APP_ID", &APP_ID.to_string()),
            ("GITHUB_APP_KEY_PARAMETER", names::GITHUB_APP_KEY_PARAMETER),
        ])
        .expect("settings")
        .deps(&self.local.sdk)
    }

    async fn requests(&self) -> Vec<Request> {
        self.github.received_requests().await.unwrap_or_default()
    }

    /// (method, path, JSON body) of the check-run writes, in order.
    async fn check_run_writes(&self) -> Vec<(String, String, Value)> {
        self.requests()
            .await
            .iter()
            .filter(|r| r.url.path().contains("/check-runs") && r.method.as_str() != "GET")
            .map(|r| {
                (
                    r.method.to_string(),
                    r.url.path().to_owned(),
                    serde_json::from_slice(&r.body).unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// The run's answer to a press by trina, who has Triage.
fn told_trina(answer: &Value) {
    assert!(
        answer["output"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("@trina has the triage role")),
        "{answer:#}"
    );
}

fn app() -> AppSettings {
    AppSettings {
        app_id: APP_ID,
        key_parameter: names::GITHUB_APP_KEY_PARAMETER.into(),
        statuses_too: false,
    }
}

fn states(writes: &[(String, String, Value)]) -> Vec<String> {
    writes
        .iter()
        .filter(|(_, _, b)| b.get("status").is_some())
        .map(|(_, _, b)| {
            let s = b["status"].as_str().unwrap_or_default();
            match b["conclusion"].as_str() {
                Some(c) => format!("{s}/{c}"),
                None => s.to_owned(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_push_is_one_check_run_queued_then_in_progress_then_completed_and_no_status() {
    let logs = capture_logs();
    let world = World::start(BUILDSPEC, json!({"total_count": 0, "check_runs": []})).await;
    world.push("a1b2c3d4-app-mode-push").await;
    world.run().await;

    let writes = world.check_run_writes().await;
    let creates: Vec<_> = writes.iter().filter(|(m, _, _)| m == "POST").collect();
    assert_eq!(
        creates.len(),
        1,
        "one run per (delivery, project): {writes:#?}"
    );
    let created = &creates[0].2;
    assert_eq!(created["head_sha"], SHA);
    assert_eq!(created["name"], "gantry/gantry-dev");
    assert_eq!(created["external_id"], "a1b2c3d4-app-mode-push/gantry-dev");
    assert_eq!(created["status"], "queued");
    assert_eq!(
        states(&writes),
        ["queued", "in_progress", "completed/success"],
        "{writes:#?}"
    );
    assert!(
        writes[1..]
            .iter()
            .all(|(m, p, _)| m == "PATCH" && p.ends_with("/check-runs/901")),
        "later moments update the same run: {writes:#?}"
    );
    // The summary names the buildspec the build runs.
    assert!(
        writes[1].2["output"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("Buildspec: `sha256:")),
        "{:#}",
        writes[1].2
    );
    // Once the build started, the run's details are its page, and the
    // summary links it too.
    for write in &writes[1..] {
        let details = write.2["details_url"].as_str().unwrap_or_default();
        assert!(
            details.starts_with(&format!("{PAGES}/builds/gantry-dev/")),
            "{:#}",
            write.2
        );
        assert!(
            write.2["output"]["summary"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("[Build page]({details})"))),
            "{:#}",
            write.2
        );
    }
    // Running: a Cancel button; completed: none.
    assert_eq!(writes[1].2["actions"][0]["identifier"], "gantry-cancel");
    assert_eq!(writes[2].2["actions"], json!([]));

    let requests = world.requests().await;
    assert!(
        !requests.iter().any(|r| r.url.path().contains("/statuses/")),
        "App mode reports a moment once, as a check run"
    );
    // Each installation token is asked for the one repository and the
    // least permission: contents read for the buildspec, checks write.
    let scopes: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path().ends_with("/access_tokens"))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or_default())
        .collect();
    assert!(
        scopes.contains(
            &json!({"repositories": ["Hello-World"], "permissions": {"checks": "write"}})
        ),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(
            &json!({"repositories": ["Hello-World"], "permissions": {"contents": "read"}})
        ),
        "{scopes:?}"
    );
    // Cached: one exchange per scope, not one per call.
    assert_eq!(scopes.len(), 2, "{scopes:?}");

    let text = logs.text();
    assert!(text.contains("a1b2c3d4-app-mode-push"), "the run logged");
    assert!(
        !text.contains(INSTALLATION_TOKEN),
        "an installation token in the logs"
    );
    assert!(!text.contains("PRIVATE KEY"), "the App's key in the logs");
    world.local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_rejected_buildspec_completes_the_run_as_a_failure_with_annotations_at_its_lines() {
    let bad = "version: 0.2\nphases:\n  biuld:\n    commands:\n      - make test\n";
    let world = World::start(bad, json!({"check_runs": []})).await;
    world.push("a1b2c3d4-app-mode-bad").await;
    world.run().await;
    let writes = world.check_run_writes().await;
    assert_eq!(
        states(&writes),
        ["queued", "completed/failure"],
        "{writes:#?}"
    );
    let done = &writes[1].2;
    let annotations = done["output"]["annotations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!annotations.is_empty(), "{done:#}");
    assert_eq!(annotations[0]["path"], "buildspec.yml");
    assert_eq!(annotations[0]["start_line"], 3);
    assert_eq!(annotations[0]["start_column"], 3);
    assert_eq!(annotations[0]["annotation_level"], "failure");
    world.local.moto.stop().await;
}

/// The crash window of a creation: GitHub made the run but its answer was
/// lost (or the function stopped before recording it). The retry finds the
/// run by its external id and updates it instead of making a second.
#[tokio::test(flavor = "current_thread")]
async fn a_run_github_already_has_is_found_by_its_external_id_not_made_twice() {
    let world = World::start(
        BUILDSPEC,
        json!({"check_runs": [
            {"id": 555, "external_id": "someone-else/gantry-dev"},
            {"id": 777, "external_id": "a1b2c3d4-app-mode-lost/gantry-dev"},
        ]}),
    )
    .await;
    world.push("a1b2c3d4-app-mode-lost").await;
    world.run().await;
    let writes = world.check_run_writes().await;
    assert!(
        writes
            .iter()
            .all(|(m, p, _)| m == "PATCH" && p.ends_with("/check-runs/777")),
        "{writes:#?}"
    );
    assert_eq!(
        states(&writes),
        ["queued", "in_progress", "completed/success"]
    );
    world.local.moto.stop().await;
}

/// A moment that arrives late (in progress after completed, queued after
/// anything) is kept out: the run never goes backwards.
#[tokio::test(flavor = "current_thread")]
async fn a_late_moment_never_moves_the_run_backwards() {
    let world = World::start(BUILDSPEC, json!({"check_runs": []})).await;
    world.push("a1b2c3d4-app-mode-late").await;
    let logged = world.run().await;
    let before = world.check_run_writes().await.len();
    let events = world.events_deps();
    let e = build_started(&logged);
    let verdict = gantry_core::status::started(&e);
    let holder = gantry_core::records::Holder {
        id: "late-moment".into(),
        deadline: gantry_core::deadline::Deadline::after(std::time::Duration::from_secs(60)),
    };
    let moment = |only_create, key: &str| Moment {
        correlation_id: e.correlation_id.as_str(),
        project: &e.project,
        build_id: Some(&e.build_id),
        buildspec_digest: None,
        source: &e.source,
        name: "gantry/gantry-dev",
        moment: key.to_owned(),
        verdict: &verdict,
        record: None,
        text: None,
        log_annotations: &[],
        only_create,
    };
    let late = check_runs::report(
        &events.reporter,
        &holder,
        &moment(false, "a-replayed-start"),
    )
    .await
    .expect("reported");
    assert_eq!(late, Outcome::Kept("never backwards"));
    let queued = check_runs::report(&events.reporter, &holder, &moment(true, "a-late-accept"))
        .await
        .expect("reported");
    assert_eq!(queued, Outcome::Kept("the check run is further along"));
    assert_eq!(world.check_run_writes().await.len(), before, "nothing sent");
    world.local.moto.stop().await;
}

/// Re-run on GitHub: the same commit and project build again, as a new
/// run, with the next attempt number; GitHub's own delivery of it is all
/// it takes.
#[tokio::test(flavor = "current_thread")]
async fn re_run_builds_the_same_commit_again_as_a_new_run_with_the_next_attempt() {
    let world = World::start(BUILDSPEC, json!({"check_runs": []})).await;
    world.push("a1b2c3d4-app-mode-first").await;
    world.run().await;
    world
        .press(
            "a1b2c3d4-app-mode-rerun",
            "a1b2c3d4-app-mode-first",
            "octocat",
            None,
        )
        .await;
    let events = world.run().await;
    let started = build_started(&events);
    assert_eq!(started.correlation_id, "a1b2c3d4-app-mode-rerun");
    assert_eq!(started.source.commit_sha, SHA);
    assert_eq!(started.source.attempt, 2);
    // A run is acted on from its own repository only: the same external
    // id in a delivery about another repository re-runs nothing.
    world
        .press_in(
            "Codertocat/Other",
            "a1b2c3d4-app-mode-elsewhere",
            "a1b2c3d4-app-mode-first",
            "octocat",
            None,
        )
        .await;
    let elsewhere = world.run().await;
    assert!(
        !elsewhere
            .iter()
            .any(|o| o.detail_type == BuildRequested::DETAIL_TYPE),
        "{elsewhere:#?}"
    );
    let writes = world.check_run_writes().await;
    let creates: Vec<_> = writes.iter().filter(|(m, _, _)| m == "POST").collect();
    assert_eq!(creates.len(), 2, "a re-run is a new run: {writes:#?}");
    assert_eq!(
        creates[1].2["external_id"],
        "a1b2c3d4-app-mode-rerun/gantry-dev"
    );
    assert_eq!(
        states(&writes),
        [
            "queued",
            "in_progress",
            "completed/success",
            "queued",
            "in_progress",
            "completed/success"
        ]
    );
    world.local.moto.stop().await;
}

const APPROVAL_CONFIG: &str = "\
version: 1
repositories:
  - name: Codertocat/*
    project: gantry-dev
    forks: approval
";

/// The corpus pull request, opened from a fork (mallory's).
fn fork_pr() -> Vec<u8> {
    let mut pr: Value =
        serde_json::from_slice(&corpus_file("10_pull_request__opened.payload.json"))
            .expect("corpus JSON");
    pr["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/Hello-World");
    pr["pull_request"]["head"]["sha"] = json!(SHA);
    serde_json::to_vec(&pr).expect("JSON")
}

/// A fork's commit is held: its run says `action_required` with the
/// Approve button. Someone with Triage presses it: refused, and told so in
/// the run, nothing builds. A maintainer presses it: the held run is done
/// (neutral, no button) and the commit builds with the repository's trust
/// in a new run.
#[tokio::test(flavor = "current_thread")]
async fn approve_and_build_acts_only_for_someone_who_could_push() {
    let world = World::with_config(APPROVAL_CONFIG, BUILDSPEC, json!({"check_runs": []})).await;
    world
        .deliver("pull_request", "a1b2c3d4-fork-opened", &fork_pr())
        .await;
    let events = world.run().await;
    assert!(
        events
            .iter()
            .all(|o| o.detail_type != BuildStarted::DETAIL_TYPE)
    );
    let writes = world.check_run_writes().await;
    assert_eq!(
        states(&writes),
        ["queued", "completed/action_required"],
        "{writes:#?}"
    );
    assert_eq!(writes[1].2["actions"][0]["identifier"], "gantry-approve");

    world
        .press(
            "a1b2c3d4-fork-trina",
            "a1b2c3d4-fork-opened",
            "trina",
            Some("gantry-approve"),
        )
        .await;
    let events = world.run().await;
    assert!(
        events
            .iter()
            .all(|o| o.detail_type != BuildStarted::DETAIL_TYPE)
    );
    let writes = world.check_run_writes().await;
    let refusal = &writes.last().expect("answered").2;
    assert_eq!(refusal["conclusion"], "action_required", "{refusal:#}");
    assert_eq!(refusal["actions"][0]["identifier"], "gantry-approve");
    told_trina(refusal);

    // Re-run of the held run, by the fork's author: held again. A re-run
    // keeps the fork's trust level; it is never a way around approval.
    world
        .press(
            "a1b2c3d4-fork-rerun",
            "a1b2c3d4-fork-opened",
            "mallory",
            None,
        )
        .await;
    let events = world.run().await;
    assert!(
        events
            .iter()
            .all(|o| o.detail_type != BuildStarted::DETAIL_TYPE)
    );
    assert!(
        events
            .iter()
            .any(|o| o.detail_type == BuildHeld::DETAIL_TYPE
                && o.detail["correlation_id"] == "a1b2c3d4-fork-rerun"
                && o.detail["source"]["attempt"] == 2),
        "{events:#?}"
    );

    world
        .press(
            "a1b2c3d4-fork-mona",
            "a1b2c3d4-fork-opened",
            "mona",
            Some("gantry-approve"),
        )
        .await;
    let events = world.run().await;
    let started = build_started(&events);
    assert!(
        started.trusted,
        "approved: it builds with the repository's trust"
    );
    assert_eq!(started.correlation_id, "a1b2c3d4-fork-mona");
    let writes = world.check_run_writes().await;
    let held_run_done = writes
        .iter()
        .find(|(_, _, b)| b["conclusion"] == "neutral")
        .expect("the held run is completed");
    assert_eq!(held_run_done.2["actions"], json!([]));
    assert_eq!(
        writes.iter().filter(|(m, _, _)| m == "POST").count(),
        3,
        "the re-run and the approved build are new runs"
    );
    world.local.moto.stop().await;
}

const STOP_BUILD: &str = "CodeBuild_20161006.StopBuild";

/// The one `Build Started` among `events`.
fn build_started(events: &[gantry_local::tap::Observed]) -> BuildStarted {
    let started = events
        .iter()
        .find(|o| o.detail_type == BuildStarted::DETAIL_TYPE)
        .expect("a build started");
    serde_json::from_value(started.detail.clone()).expect("a Build Started")
}

/// CodeBuild's final state change for `build_id` (the corpus sample),
/// its log in `/aws/codebuild/gantry-dev`, the stream named by the build's
/// uuid.
fn final_event(build_id: &str, status: &str) -> Value {
    let mut event = codebuild_event(build_id, status);
    let stream = build_id.rsplit(':').next().unwrap_or(build_id);
    event["detail"]["additional-information"]["logs"] = json!({
        "group-name": LOG_GROUP,
        "stream-name": stream,
        "deep-link": format!("https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:group={LOG_GROUP};stream={stream}"),
    });
    event
}

const LOG_GROUP: &str = "/aws/codebuild/gantry-dev";

/// Writes `lines` as the build's log, as CodeBuild does: one event each.
async fn put_log(world: &World, build_id: &str, lines: &[String]) {
    let stream = build_id.rsplit(':').next().unwrap_or(build_id);
    let place = gantry_core::page::log::LogPlace {
        group: LOG_GROUP.to_owned(),
        stream: stream.to_owned(),
    };
    gantry_e2e::put_build_log(&world.local.sdk, &place, lines).await;
}

/// A failed build's run: the end of the failed phase's log in
/// `output.text` (colours removed, within GitHub's 65,535 characters,
/// never the other phases'), and the log's compiler and `::error` lines as
/// annotations at their files and lines.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_build_shows_the_end_of_its_failed_phase_and_annotates_what_the_log_names() {
    let world = World::start(BUILDSPEC, json!({"check_runs": []})).await;
    world.push("a1b2c3d4-app-mode-failed").await;
    let events = world.local.pump(&world.functions).await;
    let build_id = build_started(&events).build_id.to_string();
    let mut log: Vec<String> = vec![
        "[Container] 2026/12/01 10:00:00.000001 Entering phase INSTALL".into(),
        "INSTALL-ONLY line".into(),
        "[Container] 2026/12/01 10:00:01.000001 Phase complete: INSTALL State: SUCCEEDED".into(),
        "[Container] 2026/12/01 10:00:01.000002 Entering phase BUILD".into(),
    ];
    // Far more than GitHub takes: 1,000 lines of 120 characters.
    log.extend((0..1000).map(|i| {
        format!(
            "\u{1b}[32mcompiling unit {i:04}\u{1b}[0m {}",
            "x".repeat(100)
        )
    }));
    log.push("src/lib.rs:3:5: error: mismatched types".into());
    log.push("::error file=src/main.rs,line=7,col=2::unused result".into());
    log.push("[Container] 2026/12/01 10:00:09.000001 Phase complete: BUILD State: FAILED".into());
    put_log(&world, &build_id, &log).await;

    let events_deps = world.events_deps();
    gantry_build_events::handle_event(&events_deps, &final_event(&build_id, "FAILED"))
        .await
        .expect("reported");
    let writes = world.check_run_writes().await;
    let (_, _, done) = writes.last().expect("completed");
    assert_eq!(done["conclusion"], "failure", "{done:#}");
    let text = done["output"]["text"].as_str().expect("output.text");
    assert!(
        text.chars().count() <= 65_535,
        "{} characters",
        text.chars().count()
    );
    assert!(text.contains("The last lines of BUILD"), "{}", &text[..200]);
    assert!(text.contains("src/lib.rs:3:5: error: mismatched types"));
    assert!(text.contains("compiling unit 0999"));
    assert!(!text.contains('\u{1b}'), "colours left in");
    assert!(!text.contains("INSTALL-ONLY"), "another phase's lines");
    let annotations = done["output"]["annotations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let at: Vec<(String, u64)> = annotations
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap_or_default().to_owned(),
                a["start_line"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert!(at.contains(&("src/lib.rs".into(), 3)), "{at:?}");
    assert!(at.contains(&("src/main.rs".into(), 7)), "{at:?}");
    world.local.moto.stop().await;
}

/// Cancel on a running build: refused for Triage, told in the run, and
/// nothing stopped; for a maintainer the build is stopped (StopBuild) and
/// CodeBuild's STOPPED completes its run as cancelled.
#[tokio::test(flavor = "current_thread")]
async fn cancel_stops_the_build_only_for_someone_who_could_push() {
    let world = World::start(BUILDSPEC, json!({"check_runs": []})).await;
    world.push("a1b2c3d4-app-mode-cancel").await;
    // Running: CodeBuild has not ended it yet.
    let events = world.local.pump(&world.functions).await;
    let build_id = build_started(&events).build_id.to_string();
    world
        .press(
            "a1b2c3d4-cancel-trina",
            "a1b2c3d4-app-mode-cancel",
            "trina",
            Some("gantry-cancel"),
        )
        .await;
    world.local.pump(&world.functions).await;
    assert!(
        world.proxy.calls(STOP_BUILD).is_empty(),
        "Triage stopped a build"
    );
    let writes = world.check_run_writes().await;
    let refusal = &writes.last().expect("answered").2;
    assert_eq!(refusal["status"], "in_progress");
    assert_eq!(refusal["actions"][0]["identifier"], "gantry-cancel");
    told_trina(refusal);

    world
        .press(
            "a1b2c3d4-cancel-mona",
            "a1b2c3d4-app-mode-cancel",
            "mona",
            Some("gantry-cancel"),
        )
        .await;
    world.local.pump(&world.functions).await;
    assert_eq!(world.proxy.calls(STOP_BUILD), [json!({"id": build_id})]);
    // moto ends every build SUCCEEDED when asked; CodeBuild says STOPPED.
    let events_deps = world.events_deps();
    gantry_build_events::handle_event(&events_deps, &final_event(&build_id, "STOPPED"))
        .await
        .expect("reported");
    let writes = world.check_run_writes().await;
    assert_eq!(
        states(&writes).last().map(String::as_str),
        Some("completed/cancelled"),
        "{writes:#?}"
    );
    world.local.moto.stop().await;
}
