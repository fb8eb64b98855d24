//! From a running build to people: commit statuses on a loopback GitHub and
//! a message on a loopback chat, through the whole chain against the moto
//! server, with CodeBuild's events taken from real samples in the corpus.

use gantry_e2e::{
    GITHUB_TOKEN, LocalStack, SECRET, capture_logs, codebuild_event, corpus_file, github_headers,
};
use gantry_local::functions::{GitHubUrls, LocalFunctions};
use gantry_local::proxy::{Fault, Match, Times};
use gantry_local::stack;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";
/// The secret part of the chat webhook URL: never in a log line.
const CHAT_TOKEN: &str = "T0001/B0002/XyZchatSECRET42";

fn config() -> String {
    gantry_e2e::every_push_config(
        "    notifications:\n      - provider: slack\n        url-parameter: /gantry/notify/slack\n        when: always\n",
    )
}

struct World {
    local: LocalStack,
    functions: LocalFunctions,
    webhook: gantry_webhook::Deps,
    github: MockServer,
    chat: MockServer,
}

impl World {
    async fn start(chat_answers: Vec<ResponseTemplate>) -> World {
        World::with_buildspec(chat_answers, BUILDSPEC).await
    }

    async fn with_buildspec(chat_answers: Vec<ResponseTemplate>, buildspec: &str) -> World {
        let local = LocalStack::start(&config()).await;
        let github = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/repos/Codertocat/Hello-World/contents/buildspec.yml"))
            .respond_with(ResponseTemplate::new(200).set_body_string(buildspec))
            .mount(&github)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(
                "^/repos/Codertocat/Hello-World/statuses/[0-9a-f]{40}$",
            ))
            .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
            .mount(&github)
            .await;
        let chat = MockServer::start().await;
        let n = chat_answers.len();
        for (i, answer) in chat_answers.into_iter().enumerate() {
            let mock = Mock::given(method("POST")).respond_with(answer);
            // Each answer once, in order; the last one from then on.
            let mock = if i + 1 < n {
                mock.up_to_n_times(1)
            } else {
                mock
            };
            mock.with_priority(u8::try_from(i + 1).unwrap_or(u8::MAX))
                .mount(&chat)
                .await;
        }
        aws_sdk_ssm::Client::new(&local.sdk)
            .put_parameter()
            .name("/gantry/notify/slack")
            .value(format!("{}/services/{CHAT_TOKEN}", chat.uri()))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("seed the chat URL");
        let functions = LocalFunctions::new(
            &local.sdk,
            &GitHubUrls {
                contents_api: &github.uri(),
                with_token: true,
                statuses_api: &github.uri(),
                app: None,
                page_url: None,
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
            chat,
        }
    }

    async fn push(&self, delivery: &str) {
        self.push_body(
            delivery,
            corpus_file("07_push__with-new-branch.payload.json"),
        )
        .await;
    }

    async fn push_body(&self, delivery: &str, body: Vec<u8>) {
        let headers = github_headers("push", delivery, &body, SECRET);
        let reply = gantry_webhook::handle(&self.webhook, &headers, &body).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }

    /// Runs every function on what the bus carries until it is quiet.
    async fn pump(&self) -> Vec<gantry_local::tap::Observed> {
        self.local.pump(&self.functions).await
    }

    /// The statuses GitHub received, in order: (state, description, context).
    async fn statuses(&self) -> Vec<(String, String, String)> {
        self.github
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().contains("/statuses/"))
            .map(|r| {
                let b: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
                (s("state"), s("description"), s("context"))
            })
            .collect()
    }

    async fn chat_messages(&self) -> Vec<Request> {
        self.chat.received_requests().await.unwrap_or_default()
    }

    fn events_deps(&self) -> gantry_build_events::Deps {
        stack::build_events_settings(&[("GITHUB_API_URL", &self.github.uri())])
            .expect("settings")
            .deps(&self.local.sdk)
    }
}

fn build_id(events: &[gantry_local::tap::Observed]) -> String {
    events
        .iter()
        .find(|o| o.detail_type == "Build Started")
        .and_then(|o| o.detail["build_id"].as_str())
        .expect("a build started")
        .to_owned()
}

/// The corpus's CodeBuild state change (from the AWS documentation), made
/// about our build, with `status` and, if failed, the BUILD phase failing.
#[tokio::test(flavor = "current_thread")]
async fn a_push_ends_pending_then_success_on_github_and_one_message_in_chat() {
    let logs = capture_logs();
    let world = World::start(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    world.push("b0000000-0000-4000-8000-000000000001").await;
    let events = world.pump().await;
    let id = build_id(&events);
    assert_eq!(
        world.statuses().await,
        vec![(
            "pending".into(),
            "building".into(),
            "gantry/gantry-dev".into()
        )]
    );
    // The emulator ends the build; gantry dev turns that into CodeBuild's event.
    let lines = world.functions.progress().await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&id) && l.contains("SUCCEEDED")),
        "{lines:?}"
    );
    let statuses = world.statuses().await;
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[1].0, "success");
    assert!(statuses[1].1.starts_with("passed"), "{statuses:?}");

    // The request GitHub saw, exactly.
    let requests = world.github.received_requests().await.unwrap_or_default();
    let last = requests
        .iter()
        .rev()
        .find(|r| r.url.path().contains("/statuses/"))
        .expect("a status");
    assert_eq!(
        last.url.path(),
        format!("/repos/Codertocat/Hello-World/statuses/{SHA}")
    );
    assert_eq!(
        last.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );
    let body: Value = serde_json::from_slice(&last.body).unwrap_or_default();
    assert!(
        body["target_url"]
            .as_str()
            .is_some_and(|u| u.contains("/projects/gantry-dev/build/")),
        "{body}"
    );

    let messages = world.chat_messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].url.path(), format!("/services/{CHAT_TOKEN}"));
    let slack: Value = serde_json::from_slice(&messages[0].body).unwrap_or_default();
    assert!(
        slack["text"]
            .as_str()
            .is_some_and(|t| t.contains("Codertocat/Hello-World")),
        "{slack}"
    );
    assert!(slack["blocks"].is_array(), "{slack}");

    // The record is complete and the badge says passing.
    let s3 = aws_sdk_s3::Client::new(&world.local.sdk);
    let key = gantry_core::records::build_key(&id.as_str().into());
    let record = s3
        .get_object()
        .bucket(stack::names::BUCKET)
        .key(&key)
        .send()
        .await
        .expect("record");
    let record: Value =
        serde_json::from_slice(&record.body.collect().await.expect("body").into_bytes())
            .expect("JSON");
    assert_eq!(record["finished"]["status"], "SUCCEEDED");
    assert_eq!(record["source"]["commit_sha"], SHA);
    let badge = s3
        .get_object()
        .bucket(stack::names::BUCKET)
        .key(gantry_core::badge::badge_key(
            "Codertocat/Hello-World",
            "master",
        ))
        .send()
        .await
        .expect("badge");
    assert_eq!(badge.content_type(), Some("image/svg+xml"));
    let svg = String::from_utf8_lossy(&badge.body.collect().await.expect("body").into_bytes())
        .into_owned();
    assert!(svg.contains("passing"), "{svg}");

    // No token, no webhook URL in any log line.
    let text = logs.text();
    assert!(!text.contains(GITHUB_TOKEN));
    assert!(!text.contains(CHAT_TOKEN));
}

const REPORT: &str = "arn:aws:codebuild:us-east-1:123456789012:report/gantry-dev-junit:5c2e1f0a";
const COVERAGE: &str =
    "arn:aws:codebuild:us-east-1:123456789012:report/gantry-dev-coverage:9d8e7f6a";

/// Where CodeBuild says it put the build's artifacts (start-build's path
/// and the build's id).
fn artifacts_location(id: &str) -> String {
    let uuid = id.rsplit(':').next().unwrap_or(id);
    format!(
        "arn:aws:s3:::{}/{}/{uuid}",
        stack::names::BUCKET,
        gantry_core::records::artifacts_path("gantry-dev")
    )
}

/// The build as BatchGetBuilds gives it with a buildspec's `reports:` (moto
/// keeps no reports: the proxy answers for CodeBuild).
fn with_reports(world: &World, id: &str) {
    world.local.moto.faults().inject(
        Match::target("CodeBuild_20161006.BatchGetBuilds"),
        Fault::json_answer(json!({"builds": [{
            "id": id,
            "reportArns": [REPORT, COVERAGE],
            "artifacts": {"location": artifacts_location(id)}
        }]})),
        Times::Always,
    );
}

/// Issue 17: a buildspec's test reports reach people. The status, the chat
/// message and the build record carry the counts summed over the build's
/// test reports (a coverage report has none) and the first failed tests
/// by class and name, as DescribeTestCases gives them.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_build_names_its_test_counts_and_first_failed_tests() {
    let world = World::start(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    world.push("b0000000-0000-4000-8000-000000000017").await;
    let events = world.pump().await;
    let id = build_id(&events);
    with_reports(&world, &id);
    let faults = world.local.moto.faults();
    faults.inject(
        Match::target("CodeBuild_20161006.BatchGetReports"),
        Fault::json_answer(json!({"reports": [
            {"arn": REPORT, "type": "TEST", "status": "FAILED",
             "testSummary": {"total": 124, "durationInNanoSeconds": 9,
                             "statusCounts": {"SUCCEEDED": 118, "FAILED": 3, "SKIPPED": 2, "ERROR": 1}}},
            {"arn": COVERAGE, "type": "CODE_COVERAGE", "status": "SUCCEEDED",
             "codeCoverageSummary": {"lineCoveragePercentage": 81.5}}
        ]})),
        Times::Next(1),
    );
    // The failed cases, then the errored ones.
    faults.inject(
        Match::target("CodeBuild_20161006.DescribeTestCases"),
        Fault::json_answer(json!({"testCases": [
            {"reportArn": REPORT, "prefix": "orders.TotalsTest", "name": "includesTax", "status": "FAILED"},
            {"reportArn": REPORT, "prefix": "orders.RefundTest", "name": "roundsDown", "status": "FAILED"},
            {"reportArn": REPORT, "name": "login rejects a bad password", "status": "FAILED"}
        ]})),
        Times::Next(1),
    );
    faults.inject(
        Match::target("CodeBuild_20161006.DescribeTestCases"),
        Fault::json_answer(json!({"testCases": [
            {"reportArn": REPORT, "prefix": "db.MigrationTest", "name": "upgrades", "status": "ERROR"}
        ]})),
        Times::Next(1),
    );
    gantry_build_events::handle_event(&world.events_deps(), &codebuild_event(&id, "FAILED"))
        .await
        .expect("handled");

    let statuses = world.statuses().await;
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[1].0, "failure");
    assert!(
        statuses[1].1.starts_with("failed in BUILD after ")
            && statuses[1].1.contains(
                " · tests: 3 failed, 1 errored, 118 passed, 2 skipped; orders.TotalsTest.includesTax"
            ),
        "{statuses:?}"
    );
    let messages = world.chat_messages().await;
    assert_eq!(messages.len(), 1);
    let slack = String::from_utf8_lossy(&messages[0].body).into_owned();
    assert!(
        slack.contains("tests: 3 failed, 1 errored, 118 passed, 2 skipped"),
        "{slack}"
    );
    let record = gantry_aws::records::Records::new(
        aws_sdk_s3::Client::new(&world.local.sdk),
        stack::names::BUCKET.to_owned(),
    )
    .build(&id.as_str().into())
    .await
    .expect("read")
    .expect("the record");
    let finished = record.finished.expect("finished");
    // Where the page lists the artifacts from.
    assert_eq!(
        finished.artifacts.map(|a| a.prefix),
        Some(format!(
            "{}/{}/",
            gantry_core::records::artifacts_path("gantry-dev"),
            id.rsplit(':').next().unwrap_or_default()
        ))
    );
    let tests = finished.tests.expect("the record keeps the test results");
    assert_eq!((tests.reports, tests.total()), (1, 124));
    assert_eq!(
        tests.first_failed,
        [
            "orders.TotalsTest.includesTax",
            "orders.RefundTest.roundsDown",
            "login rejects a bad password",
            "db.MigrationTest.upgrades"
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_build_fails_the_commit_naming_the_phase_and_a_duplicate_event_posts_nothing() {
    let world = World::start(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    world.push("b0000000-0000-4000-8000-000000000002").await;
    let events = world.pump().await;
    let id = build_id(&events);
    let deps = world.events_deps();
    // Its test reports cannot be read: it is reported without them.
    with_reports(&world, &id);
    world.local.moto.faults().inject(
        Match::target("CodeBuild_20161006.BatchGetReports"),
        Fault::json_error(400, "AccessDeniedException", "not authorized"),
        Times::Always,
    );
    let failed = codebuild_event(&id, "FAILED");
    for _ in 0..2 {
        gantry_build_events::handle_event(&deps, &failed)
            .await
            .expect("handled");
    }
    let statuses = world.statuses().await;
    assert_eq!(statuses.len(), 2, "pending, then one failure: {statuses:?}");
    assert_eq!(statuses[1].0, "failure");
    assert!(
        statuses[1].1.starts_with("failed in BUILD after "),
        "{statuses:?}"
    );
    assert!(!statuses[1].1.contains("tests:"), "{statuses:?}");
    assert_eq!(world.chat_messages().await.len(), 1);

    // Build Started delivered again, late, and a running-state event: the
    // commit never goes back to pending.
    let started = events
        .iter()
        .find(|o| o.detail_type == "Build Started")
        .expect("started");
    let late =
        json!({"source": "gantry", "detail-type": "Build Started", "detail": started.detail});
    let report = gantry_build_events::handle_event(&deps, &late)
        .await
        .expect("handled");
    assert_eq!(report.posted, None);
    assert_eq!(
        report.unchanged,
        Some("already finished; never back to pending")
    );
    let running = codebuild_event(&id, "IN_PROGRESS");
    let report = gantry_build_events::handle_event(&deps, &running)
        .await
        .expect("handled");
    assert_eq!(report.posted, None);
    assert_eq!(world.statuses().await.len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_lost_final_event_is_finished_by_reconcile_and_never_twice() {
    let world = World::start(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    world.push("b0000000-0000-4000-8000-000000000003").await;
    let id = build_id(&world.pump().await);
    // CodeBuild's final event never arrives; reconcile runs.
    let reconcile = stack::reconcile_settings(&[("GITHUB_API_URL", &world.github.uri())])
        .expect("settings")
        .deps(&world.local.sdk);
    let summary = gantry_reconcile::reconcile(&reconcile)
        .await
        .expect("reconciled");
    assert_eq!(summary.finished, vec![id.clone()]);
    let statuses = world.statuses().await;
    assert_eq!(
        statuses.last().map(|s| s.0.as_str()),
        Some("success"),
        "{statuses:?}"
    );
    // The event turns up after all, and reconcile runs again: nothing new.
    let deps = world.events_deps();
    gantry_build_events::handle_event(&deps, &codebuild_event(&id, "SUCCEEDED"))
        .await
        .expect("handled");
    let again = gantry_reconcile::reconcile(&reconcile)
        .await
        .expect("reconciled");
    assert!(again.finished.is_empty());
    assert_eq!(world.statuses().await.len(), 2);
    assert_eq!(world.chat_messages().await.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_chat_answering_500_then_200_gets_one_message_and_the_status_is_not_held_back() {
    let world = World::start(vec![
        ResponseTemplate::new(500).set_body_string("oops"),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    world.push("b0000000-0000-4000-8000-000000000004").await;
    let id = build_id(&world.pump().await);
    let deps = world.events_deps();
    let image = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/gantry-builds:{SHA}");
    let mut event = codebuild_event(&id, "SUCCEEDED");
    event["detail"]["additional-information"]["exported-environment-variables"] =
        json!([{"name": "IMAGE_URI", "value": image}]);
    gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("handled");
    let statuses = world.statuses().await;
    assert_eq!(statuses.last().map(|s| s.0.as_str()), Some("success"));
    let messages = world.chat_messages().await;
    assert_eq!(messages.len(), 2, "one refused, one delivered");
    assert_eq!(
        messages[0].body, messages[1].body,
        "the same message, retried"
    );
    // The record keeps the pushed image and each phase's timing.
    let record = deps
        .reporter
        .records
        .build(&id.as_str().into())
        .await
        .expect("readable")
        .expect("a record");
    let finished = record.finished.expect("finished");
    assert_eq!(finished.image_uri.as_deref(), Some(image.as_str()));
    assert!(
        finished
            .phases
            .iter()
            .any(|p| p.phase == "BUILD" && p.duration_seconds == Some(70)),
        "{:?}",
        finished.phases
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_chat_that_stays_down_fails_the_invocation_after_the_status_and_the_retry_sends_once() {
    let world = World::start(vec![ResponseTemplate::new(503)]).await;
    world.push("b0000000-0000-4000-8000-000000000005").await;
    let id = build_id(&world.pump().await);
    let deps = world.events_deps();
    let event = codebuild_event(&id, "SUCCEEDED");
    let err = gantry_build_events::handle_event(&deps, &event)
        .await
        .expect_err("the chat is down: EventBridge retries");
    assert!(err.to_string().contains("slack"), "{err}");
    assert!(!format!("{err} {err:?}").contains(CHAT_TOKEN));
    // The status went out regardless, once.
    assert_eq!(
        world.statuses().await.last().map(|s| s.0.as_str()),
        Some("success")
    );
    // The chat recovers; EventBridge's retry sends the message, not the status.
    world.chat.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&world.chat)
        .await;
    gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("handled");
    assert_eq!(world.statuses().await.len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_skipped_commit_and_a_bad_buildspec_end_with_a_status_not_pending() {
    // Line 5: an unquoted `: ` makes the command a mapping.
    let bad = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo: hi there\n";
    let world = World::with_buildspec(vec![ResponseTemplate::new(200)], bad).await;

    let mut push: Value =
        serde_json::from_slice(&corpus_file("07_push__with-new-branch.payload.json"))
            .expect("JSON");
    push["head_commit"]["message"] = json!("Tidy the docs [skip ci]");
    world
        .push_body(
            "b0000000-0000-4000-8000-000000000006",
            serde_json::to_vec(&push).expect("JSON"),
        )
        .await;
    world.pump().await;
    let statuses = world.statuses().await;
    assert_eq!(
        statuses,
        vec![(
            "success".into(),
            "skipped: [skip ci] in the commit message".into(),
            "gantry/gantry-dev".into()
        )]
    );

    world.push("b0000000-0000-4000-8000-000000000007").await;
    world.pump().await;
    let statuses = world.statuses().await;
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[1].0, "failure");
    assert!(
        statuses[1].1.starts_with("buildspec.yml:5:"),
        "{statuses:?}"
    );
    let requests = world.github.received_requests().await.unwrap_or_default();
    let last = requests
        .iter()
        .rev()
        .find(|r| r.url.path().contains("/statuses/"))
        .expect("status");
    let body: Value = serde_json::from_slice(&last.body).unwrap_or_default();
    assert_eq!(
        body["target_url"],
        format!("https://github.com/Codertocat/Hello-World/blob/{SHA}/buildspec.yml#L5")
    );
    // A rejected buildspec is a failure the chat hears about.
    assert_eq!(world.chat_messages().await.len(), 1);
}

/// Token mode with its parameter missing from SSM: the error names the
/// parameter to put there (it said "the GitHub token" for a while).
#[tokio::test(flavor = "current_thread")]
async fn a_missing_token_parameter_is_named_in_the_error() {
    let local = LocalStack::start(&config()).await;
    let deps = stack::build_events_settings(&[("GITHUB_TOKEN_PARAMETER", "/gantry/absent-token")])
        .expect("settings")
        .deps(&local.sdk);
    let err = deps
        .reporter
        .credentials
        .required(None, "Codertocat/Hello-World", Default::default())
        .await
        .expect_err("no token");
    assert!(err.to_string().contains("/gantry/absent-token"), "{err}");
    local.moto.stop().await;
}
