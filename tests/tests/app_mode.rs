//! App mode through the whole chain: a real push delivery (corpus 07, App
//! installation 1) on the moto stack, GitHub on loopback (wiremock). The
//! functions sign in as the App (JWT for an installation token scoped to
//! the one repository and permission), read the buildspec with it, and
//! report each moment as one check run: created queued at accept, then in
//! progress, then completed; never a commit status beside it, never
//! backwards, and a creation whose answer was lost is found, not repeated.

use gantry_aws::check_runs::{self, Moment, Outcome};
use gantry_aws::github::credentials::AppSettings;
use gantry_core::events::{BuildStarted, Detail};
use gantry_e2e::{LocalStack, SECRET, capture_logs, corpus_file, github_headers};
use gantry_local::functions::{GitHubUrls, LocalFunctions};
use gantry_local::stack::{self, names};
use serde_json::{Value, json};
use wiremock::matchers::{header, header_regex, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

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
    functions: LocalFunctions,
    webhook: gantry_webhook::Deps,
    github: MockServer,
}

impl World {
    /// `existing`: the check runs GitHub already lists on the commit.
    async fn start(buildspec: &str, existing: Value) -> World {
        let local = LocalStack::start(&gantry_e2e::every_push_config("")).await;
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
        Mock::given(method("POST"))
            .and(path_regex(format!("^{REPO}/statuses/")))
            .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
            .mount(&github)
            .await;
        let functions = LocalFunctions::new(
            &local.sdk,
            &GitHubUrls {
                contents_api: &github.uri(),
                with_token: false,
                statuses_api: &github.uri(),
                app: Some(app()),
            },
        )
        .expect("functions");
        let webhook = stack::webhook_settings(&[])
            .expect("settings")
            .deps(&local.sdk);
        World {
            local,
            functions,
            webhook,
            github,
        }
    }

    async fn push(&self, delivery: &str) {
        let body = corpus_file("07_push__with-new-branch.payload.json");
        let headers = github_headers("push", delivery, &body, SECRET);
        let reply = gantry_webhook::handle(&self.webhook, &headers, &body).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }

    /// Runs the chain until quiet, then lets CodeBuild's final state
    /// event reach build-events.
    async fn run(&self) -> Vec<gantry_local::tap::Observed> {
        let logged = self.local.pump(&self.functions).await;
        self.functions.progress().await;
        logged
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
    let events = stack::build_events_settings(&[
        ("GITHUB_API_URL", &world.github.uri()),
        ("GITHUB_APP_ID", &APP_ID.to_string()),
        ("GITHUB_APP_KEY_PARAMETER", names::GITHUB_APP_KEY_PARAMETER),
    ])
    .expect("settings")
    .deps(&world.local.sdk);
    let started = logged
        .iter()
        .find(|o| o.detail_type == BuildStarted::DETAIL_TYPE)
        .expect("a build started");
    let e: BuildStarted = serde_json::from_value(started.detail.clone()).expect("Build Started");
    let verdict = gantry_core::status::started(&e);
    let holder = gantry_core::records::Holder {
        id: "late-moment".into(),
        deadline: gantry_core::deadline::Deadline::after(std::time::Duration::from_secs(60)),
    };
    let moment = |only_create, key: &str| Moment {
        correlation_id: e.correlation_id.as_str(),
        project: &e.project,
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
