//! Fault injection: AWS (moto behind the recording proxy, whose fault table
//! throttles, fails, stalls or drops what a test says), GitHub (wiremock)
//! failing or slow, and the whole AWS endpoint gone. For each fault the
//! documented outcome holds: the webhook refuses the delivery with a 5xx so
//! GitHub redelivers, the other functions fail the invocation so Lambda
//! retries it (then the on-failure queue keeps it); and once the fault
//! clears, the retry does the work exactly once: no build lost, none started
//! twice.
//!
//! Timeouts are the production code's (`AwsTimeouts`, `GITHUB_TIMEOUT_MS`)
//! shortened through their environment overrides, and the SDK's standard
//! retry mode (3 attempts) is kept, with a short backoff.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use gantry_aws::{ATTEMPT_TIMEOUT_VAR, AwsTimeouts, OPERATION_TIMEOUT_VAR};
use gantry_core::settings::Env;
use gantry_e2e::{LocalStack, RecordingProxy, SECRET, corpus_file, github_headers};
use gantry_local::functions::{GitHubUrls, LocalFunctions};
use gantry_local::proxy::{Fault, Match, Times};
use gantry_local::stack::{self, names};
use gantry_local::tap::Observed;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config() -> String {
    gantry_e2e::every_push_config("")
}

/// The same repository, but pushes to `master` are skipped (a status only).
const SKIP_CONFIG: &str = "\
version: 1
repositories:
  - name: Codertocat/*
    project: gantry-dev
    push:
      branches: [main]
";

const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";
const BUILDSPEC_PATH: &str = "/repos/Codertocat/Hello-World/contents/buildspec.yml";
const STATUSES_PATH: &str = "^/repos/Codertocat/Hello-World/statuses/[0-9a-f]{40}$";

const START_BUILD: &str = "CodeBuild_20161006.StartBuild";
const PUT_EVENTS: &str = "AWSEvents.PutEvents";

/// An AWS call's limits in these tests: one attempt 5 s, the call with its
/// retries 10 s (the webhook's are 1.5 s and 4 s in production). Generous
/// because moto's PutEvents, routing to every rule's queue, takes 0.6 s on
/// an idle machine and over 3 s on a loaded one (load average 10 on two
/// cores); an attempt that times out and lands anyway publishes twice,
/// which is a test of its own.
const ATTEMPT_MS: &str = "5000";
const OPERATION_MS: &str = "10000";
/// Longer than any call may take: a stall of this long is a timeout.
const STALL: Duration = Duration::from_secs(15);
/// GitHub's limit in these tests (`GITHUB_TIMEOUT_MS`).
const GITHUB_TIMEOUT_MS: &str = "300";
/// How long to wait for published events: not at all, moto routes an event
/// to the rules' queues before PutEvents returns (and the queues are read
/// one after the other, each for this long).
const NOW: Duration = Duration::ZERO;
/// Likewise for events that must not be there: a stalled or dropped
/// request never reaches moto, and a delayed one is waited for explicitly.
const QUIET: Duration = NOW;

/// The SDK configuration a function would load, pointed at `endpoint`,
/// with the timeouts from the same environment override the functions
/// read, and the standard retry mode's 3 attempts with a short backoff.
async fn function_sdk(endpoint: &str) -> SdkConfig {
    let env = Env(|name: &str| match name {
        OPERATION_TIMEOUT_VAR => Some(OPERATION_MS.to_owned()),
        ATTEMPT_TIMEOUT_VAR => Some(ATTEMPT_MS.to_owned()),
        _ => None,
    });
    let timeouts = AwsTimeouts::from_env(&env, AwsTimeouts::WEBHOOK).expect("timeouts");
    stack::sdk_config(endpoint)
        .await
        .to_builder()
        .timeout_config(timeouts.timeout_config())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build()
}

/// The faults' timing assumes a moto that answers in well under a second:
/// one test's faults at a time (each test has its own moto server, and two
/// cores shared by many make PutEvents take seconds).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct World {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    local: LocalStack,
    proxy: RecordingProxy,
    sdk: SdkConfig,
    github: MockServer,
    webhook: gantry_webhook::Deps,
}

impl World {
    async fn start(config: &str) -> World {
        // The servers start side by side; the faults take turns.
        let local = LocalStack::start(config).await;
        let turn = ONE_AT_A_TIME.lock().await;
        let proxy = RecordingProxy::start(local.moto.endpoint(), true)
            .await
            .expect("proxy");
        let sdk = function_sdk(proxy.endpoint()).await;
        let github = MockServer::start().await;
        let webhook = stack::webhook_settings(&[]).expect("settings").deps(&sdk);
        World {
            _turn: turn,
            local,
            proxy,
            sdk,
            github,
            webhook,
        }
    }

    fn inject(&self, matcher: Match, fault: Fault, times: Times) {
        self.proxy.faults().inject(matcher, fault, times);
    }

    fn recover(&self) {
        self.proxy.faults().clear();
    }

    /// A push for each delivery id: the corpus push, pushed at a time of
    /// its own (two deliveries with one body are one delivery replayed,
    /// which the webhook refuses), redelivered with the same body.
    async fn deliver(&self, delivery: &str) -> gantry_webhook::Reply {
        let mut push: Value =
            serde_json::from_slice(&corpus_file("07_push__with-new-branch.payload.json"))
                .expect("corpus JSON");
        let pushed_at = delivery.bytes().fold(1_557_933_657_u64, |t, b| {
            t.wrapping_mul(31).wrapping_add(u64::from(b)) % 4_000_000_000
        });
        push["repository"]["pushed_at"] = serde_json::json!(pushed_at);
        let body = serde_json::to_vec(&push).expect("JSON");
        let headers = github_headers("push", delivery, &body, SECRET);
        gantry_webhook::handle(&self.webhook, &headers, &body).await
    }

    /// The Gantry events published since the last look, in order.
    async fn published(&self, wait: Duration) -> Vec<Observed> {
        self.local.logged(wait).await
    }

    /// The `Build Skipped` event of `delivery` (under [`SKIP_CONFIG`]), as
    /// EventBridge hands it to build-events.
    async fn skipped(&self, delivery: &str) -> Value {
        assert_eq!(self.deliver(delivery).await.status, 202);
        let published = self.published(NOW).await;
        assert_eq!(types(&published), vec!["Build Skipped"]);
        json!({
            "source": "gantry",
            "detail-type": "Build Skipped",
            "detail": published[0].detail,
        })
    }

    async fn github_serves_the_buildspec(&self) {
        Mock::given(method("GET"))
            .and(path(BUILDSPEC_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_string(BUILDSPEC))
            .mount(&self.github)
            .await;
    }

    fn validate_deps(&self, overrides: &[(&str, &str)]) -> gantry_validate_buildspec::Deps {
        let github = self.github.uri();
        gantry_validate_buildspec::Settings::from_env(|name| {
            if let Some((_, v)) = overrides.iter().find(|(k, _)| *k == name) {
                return Some((*v).to_owned());
            }
            match name {
                "GITHUB_API_URL" => Some(github.clone()),
                "GITHUB_TOKEN_PARAMETER" => Some(names::GITHUB_TOKEN_PARAMETER.to_owned()),
                "ARTIFACT_BUCKET" => Some(names::BUCKET.to_owned()),
                "EVENT_BUS_NAME" => Some(names::BUS.to_owned()),
                _ => None,
            }
        })
        .expect("settings")
        .deps(&self.sdk)
    }

    fn build_events_deps(&self) -> gantry_build_events::Deps {
        stack::build_events_settings(&[
            ("GITHUB_API_URL", &self.github.uri()),
            ("GITHUB_TIMEOUT_MS", GITHUB_TIMEOUT_MS),
        ])
        .expect("settings")
        .deps(&self.sdk)
    }

    fn start_deps(&self) -> gantry_start_build::Deps {
        stack::start_build_settings(&[])
            .expect("settings")
            .deps(&self.sdk)
    }

    /// The builds moto holds for the project.
    async fn builds(&self) -> Vec<String> {
        aws_sdk_codebuild::Client::new(&self.local.sdk)
            .list_builds_for_project()
            .project_name(names::PROJECT)
            .send()
            .await
            .expect("list builds")
            .ids()
            .to_vec()
    }
}

fn types(events: &[Observed]) -> Vec<&str> {
    events.iter().map(|o| o.detail_type.as_str()).collect()
}

fn outcome(reply: &gantry_webhook::Reply) -> String {
    serde_json::from_str::<Value>(&reply.body).unwrap_or_default()["outcome"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

// ---------------------------------------------------------------- webhook

/// What accepting a delivery costs in AWS requests: the claim, the
/// publication and the claim's completion, one after the other, and a
/// redelivery the claim's refused write and a read of it; a cold start's
/// first delivery one more, for its secrets and configuration.
/// GitHub waits for them all, and each costs the function more than its own
/// work on the delivery (docs/PERFORMANCE.md); the ledger used to claim the
/// delivery id as well, two requests more, which stopped nothing the
/// body's claim does not.
#[tokio::test(flavor = "current_thread")]
async fn an_accepted_delivery_is_one_claim_one_publication_and_one_completion() {
    let world = World::start(&config()).await;
    let describe = |r: &gantry_local::proxy::Recorded| match &r.target {
        Some(target) => target.clone(),
        None => format!(
            "{} {}",
            r.method,
            r.path.split('?').next().unwrap_or_default()
        ),
    };
    // The first delivery of a cold start reads the secret and the
    // configuration too, in one request.
    let first = world.deliver("fa000000-0000-4000-8000-0000000000c1").await;
    assert_eq!(first.status, 202, "{}", first.body);
    let made: Vec<String> = world.proxy.requests().iter().map(describe).collect();
    let ssm: Vec<&String> = made
        .iter()
        .filter(|m| m.starts_with("AmazonSSM."))
        .collect();
    assert_eq!(ssm, ["AmazonSSM.GetParameters"], "{made:#?}");
    assert_eq!(made.len(), 4, "{made:#?}");

    let before = world.proxy.requests().len();
    let reply = world.deliver("fa000000-0000-4000-8000-0000000000c2").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let made: Vec<String> = world.proxy.requests()[before..]
        .iter()
        .map(describe)
        .collect();
    let claim = format!("PUT /{}/deliveries/body-", names::BUCKET);
    assert_eq!(made.len(), 3, "{made:#?}");
    assert!(made[0].starts_with(&claim), "the claim first: {made:#?}");
    assert_eq!(made[1], PUT_EVENTS, "{made:#?}");
    assert_eq!(made[2], made[0], "then the same key completed: {made:#?}");

    let before = world.proxy.requests().len();
    let again = world.deliver("fa000000-0000-4000-8000-0000000000c2").await;
    assert_eq!((again.status, outcome(&again).as_str()), (200, "duplicate"));
    let made: Vec<String> = world.proxy.requests()[before..]
        .iter()
        .map(describe)
        .collect();
    assert_eq!(made.len(), 2, "{made:#?}");
    assert_eq!(made[0], made[1].replacen("GET", "PUT", 1), "{made:#?}");
    assert!(made[0].starts_with(&claim), "{made:#?}");
}

/// The delivery is refused with `status` while the fault holds, nothing is
/// published; GitHub's redelivery (same id) after recovery publishes once,
/// and a further redelivery is a duplicate.
async fn webhook_refuses_then_redelivery_publishes_once(
    world: &World,
    delivery: &str,
    status: u16,
) {
    let began = Instant::now();
    let reply = world.deliver(delivery).await;
    let took = began.elapsed();
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(outcome(&reply), "error", "{}", reply.body);
    assert!(
        reply.body.contains("redeliver later"),
        "GitHub's user is told what to do: {}",
        reply.body
    );
    // Within the call's timeout (plus the calls that did succeed), not at
    // Lambda's kill; with the production timeouts (4 s a call) that is well
    // before GitHub gives up at 10 s.
    let limit = Duration::from_millis(OPERATION_MS.parse().unwrap_or(0)) + Duration::from_secs(3);
    assert!(took < limit, "answered after {took:?}");
    assert!(world.published(QUIET).await.is_empty(), "nothing published");

    world.recover();
    let reply = world.deliver(delivery).await;
    assert_eq!(
        reply.status, 202,
        "the redelivery goes through: {}",
        reply.body
    );
    let published = world.published(NOW).await;
    assert_eq!(types(&published), vec!["Build Requested"]);
    assert_eq!(published[0].detail["correlation_id"], delivery);

    let again = world.deliver(delivery).await;
    assert_eq!((again.status, outcome(&again).as_str()), (200, "duplicate"));
    assert!(world.published(QUIET).await.is_empty());
}

/// Each fault of the webhook's dependencies in turn, on one local stack
/// (a moto server takes seconds to start), each with its own delivery id.
#[tokio::test(flavor = "current_thread")]
async fn webhook_faults_refuse_the_delivery_with_5xx_and_the_redelivery_publishes_once() {
    let world = World::start(&config()).await;
    let faulted = |r: &gantry_local::proxy::Recorded, prefix: &str| {
        r.faulted && r.target.as_deref().is_some_and(|t| t.starts_with(prefix))
    };

    // SSM unreachable (connections dropped): the secret cannot be read.
    world.inject(Match::target("AmazonSSM."), Fault::Drop, Times::Always);
    webhook_refuses_then_redelivery_publishes_once(
        &world,
        "fa000000-0000-4000-8000-000000000001",
        503,
    )
    .await;
    let ssm_attempts = world
        .proxy
        .requests()
        .iter()
        .filter(|r| faulted(r, "AmazonSSM."))
        .count();
    assert_eq!(ssm_attempts, 3, "standard retry mode: 3 attempts");

    // The S3 delivery ledger answering SlowDown (503) to every attempt.
    world.inject(
        Match::path(Some("PUT"), &format!("/{}/deliveries/", names::BUCKET)),
        Fault::s3_slow_down(),
        Times::Always,
    );
    let puts_before = world.proxy.calls(PUT_EVENTS).len();
    webhook_refuses_then_redelivery_publishes_once(
        &world,
        "fa000000-0000-4000-8000-000000000002",
        503,
    )
    .await;
    assert_eq!(
        world.proxy.calls(PUT_EVENTS).len(),
        puts_before + 1,
        "nothing published until the ledger recovered"
    );

    // EventBridge throttling past the SDK's 3 attempts: the marker is
    // released, so the redelivery is not taken for a duplicate.
    world.inject(
        Match::target(PUT_EVENTS),
        Fault::throttling(),
        Times::Always,
    );
    let puts_before = world.proxy.calls(PUT_EVENTS).len();
    webhook_refuses_then_redelivery_publishes_once(
        &world,
        "fa000000-0000-4000-8000-000000000003",
        502,
    )
    .await;
    assert_eq!(
        world.proxy.calls(PUT_EVENTS).len() - puts_before,
        3 + 1,
        "3 throttled attempts, then the redelivery's"
    );

    // A throttle shorter than the retries is absorbed: accepted at once.
    world.inject(
        Match::target(PUT_EVENTS),
        Fault::throttling(),
        Times::Next(2),
    );
    let reply = world.deliver("fa000000-0000-4000-8000-000000000004").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(types(&world.published(NOW).await), vec!["Build Requested"]);
    world.recover();

    // EventBridge stalled past the timeout: 502 in time, not a Lambda kill.
    world.inject(
        Match::target(PUT_EVENTS),
        Fault::Stall(STALL),
        Times::Always,
    );
    webhook_refuses_then_redelivery_publishes_once(
        &world,
        "fa000000-0000-4000-8000-000000000005",
        502,
    )
    .await;

    // PutEvents answering 200 with the entry refused (FailedEntryCount 1),
    // which the SDK does not retry.
    world.inject(
        Match::target(PUT_EVENTS),
        Fault::put_events_partial_failure(),
        Times::Always,
    );
    let puts_before = world.proxy.calls(PUT_EVENTS).len();
    webhook_refuses_then_redelivery_publishes_once(
        &world,
        "fa000000-0000-4000-8000-000000000006",
        502,
    )
    .await;
    assert_eq!(world.proxy.calls(PUT_EVENTS).len() - puts_before, 1 + 1);
}

/// The ambiguous timeout: EventBridge took the event but answered after the
/// SDK gave up on the attempt, so the retry publishes it again. The webhook
/// cannot tell; the chain downstream dedupes on the delivery id, so the
/// build starts once.
#[tokio::test(flavor = "current_thread")]
async fn webhook_a_publish_that_lands_after_the_attempt_timeout_is_seen_twice_but_builds_once() {
    let world = World::start(&config()).await;
    world.github_serves_the_buildspec().await;
    world.inject(
        Match::target(PUT_EVENTS),
        Fault::Delay(Duration::from_millis(6000)),
        Times::Next(1),
    );
    let delivery = "fa000000-0000-4000-8000-000000000007";
    let reply = world.deliver(delivery).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    // Give the late request time to reach moto.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let functions = LocalFunctions::new(
        &world.sdk,
        &GitHubUrls {
            contents_api: &world.github.uri(),
            with_token: true,
            statuses_api: &world.github.uri(),
            app: None,
            page_url: None,
        },
    )
    .expect("functions");
    let events = world.local.pump(&functions).await;
    let requested = events
        .iter()
        .filter(|o| o.detail_type == "Build Requested")
        .count();
    assert_eq!(requested, 2, "at least once: {:?}", types(&events));
    let started = events
        .iter()
        .filter(|o| o.detail_type == "Build Started")
        .count();
    assert_eq!(started, 1, "{:?}", types(&events));
    assert_eq!(world.proxy.forwarded(START_BUILD).len(), 1);
    assert_eq!(world.builds().await.len(), 1);
}

// ----------------------------------------------------- validate-buildspec

/// A `Build Requested` as the webhook publishes it.
async fn build_requested(world: &World, delivery: &str) -> gantry_core::events::BuildRequested {
    assert_eq!(world.deliver(delivery).await.status, 202);
    let published = world.published(NOW).await;
    assert_eq!(types(&published), vec!["Build Requested"]);
    serde_json::from_value(published[0].detail.clone()).expect("a Build Requested")
}

async fn validate_fails_on_github_then_validates_once(
    world: &World,
    first: ResponseTemplate,
    delivery: &str,
) {
    world.github.reset().await;
    let request = build_requested(world, delivery).await;
    Mock::given(method("GET"))
        .and(path(BUILDSPEC_PATH))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&world.github)
        .await;
    world.github_serves_the_buildspec().await;
    let deps = world.validate_deps(&[("GITHUB_TIMEOUT_MS", GITHUB_TIMEOUT_MS)]);

    let began = Instant::now();
    let err = gantry_validate_buildspec::handle(&deps, request.clone())
        .await
        .expect_err("the invocation fails, so Lambda retries it");
    assert!(
        matches!(err, gantry_validate_buildspec::HandlerError::GitHub(ref e) if e.is_transient()),
        "{err}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert!(world.published(QUIET).await.is_empty(), "nothing published");

    // Lambda's retry, GitHub back.
    let outcome = gantry_validate_buildspec::handle(&deps, request)
        .await
        .unwrap_or_else(|e| panic!("the retry validates: {e}"));
    assert!(
        matches!(outcome, gantry_validate_buildspec::Outcome::Validated(_)),
        "{outcome:?}"
    );
    let published = world.published(NOW).await;
    assert_eq!(types(&published), vec!["Buildspec Validated"]);
    assert_eq!(published[0].detail["correlation_id"], delivery);
}

#[tokio::test(flavor = "current_thread")]
async fn validate_buildspec_faults_fail_the_invocation_and_the_retry_validates_once() {
    let world = World::start(&config()).await;
    // GitHub's contents API failing, rate limiting, and slower than
    // GITHUB_TIMEOUT_MS.
    validate_fails_on_github_then_validates_once(
        &world,
        ResponseTemplate::new(502).set_body_string("Bad Gateway"),
        "fb000000-0000-4000-8000-000000000001",
    )
    .await;
    validate_fails_on_github_then_validates_once(
        &world,
        ResponseTemplate::new(429)
            .insert_header("retry-after", "60")
            .set_body_string(r#"{"message":"API rate limit exceeded"}"#),
        "fb000000-0000-4000-8000-000000000002",
    )
    .await;
    validate_fails_on_github_then_validates_once(
        &world,
        ResponseTemplate::new(200)
            .set_body_string(BUILDSPEC)
            .set_delay(Duration::from_secs(1)),
        "fb000000-0000-4000-8000-000000000003",
    )
    .await;

    // EventBridge throttling past the retries when publishing the result.
    let request = build_requested(&world, "fb000000-0000-4000-8000-000000000004").await;
    let deps = world.validate_deps(&[]);
    world.inject(
        Match::target(PUT_EVENTS),
        Fault::throttling(),
        Times::Always,
    );
    let err = gantry_validate_buildspec::handle(&deps, request.clone())
        .await
        .expect_err("fails");
    assert!(
        matches!(err, gantry_validate_buildspec::HandlerError::Publish(_)),
        "{err}"
    );
    assert!(world.published(QUIET).await.is_empty());
    world.recover();
    gantry_validate_buildspec::handle(&deps, request)
        .await
        .unwrap_or_else(|e| panic!("the retry validates: {e}"));
    assert_eq!(
        types(&world.published(NOW).await),
        vec!["Buildspec Validated"]
    );
}

// ------------------------------------------------------------ start-build

fn resolved_event(correlation_id: &str) -> gantry_core::events::SecretsResolved {
    serde_json::from_value(json!({
        "v": 1,
        "correlation_id": correlation_id,
        "project": "gantry-dev",
        "source": {
            "trigger": "push",
            "repository": {"full_name": "Codertocat/Hello-World", "owner": "Codertocat", "name": "Hello-World",
                "clone_url": "https://github.com/Codertocat/Hello-World.git",
                "html_url": "https://github.com/Codertocat/Hello-World", "private": false},
            "commit_sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "git_ref": "refs/heads/master",
            "branch": "master", "fork": false,
            "changed_paths": {"paths": [], "truncated": true}, "received_at_ms": 1
        },
        "buildspec": {"origin": "repository", "location": "Codertocat/Hello-World:buildspec.yml@6113728",
            "digest": "sha256:00", "inline": BUILDSPEC},
        "trusted": true,
        "cancel_superseded": true
    }))
    .expect("a Secrets Resolved event")
}

/// start-build fails while the fault holds, with its claim released and no
/// build; Lambda's retry after recovery starts exactly one build, asking
/// CodeBuild with the same idempotency token every time.
async fn start_fails_then_starts_once(
    world: &World,
    matcher: Match,
    fault: Fault,
    correlation_id: &str,
) {
    let deps = world.start_deps();
    let token = gantry_start_build::store::start_token(correlation_id, names::PROJECT);
    let ours = |calls: Vec<Value>| -> Vec<Value> {
        calls
            .into_iter()
            .filter(|c| c["idempotencyToken"] == token.as_str())
            .collect()
    };
    let builds_before = world.builds().await.len();
    world.inject(matcher, fault, Times::Always);
    let began = Instant::now();
    let err = gantry_start_build::handle(&deps, resolved_event(correlation_id))
        .await
        .expect_err("the invocation fails, so Lambda retries it");
    assert!(
        began.elapsed() < Duration::from_secs(13),
        "failed after {:?}: {err}",
        began.elapsed()
    );
    assert!(ours(world.proxy.forwarded(START_BUILD)).is_empty(), "{err}");
    assert_eq!(world.builds().await.len(), builds_before);
    assert!(world.published(QUIET).await.is_empty(), "nothing announced");

    world.recover();
    let outcome = gantry_start_build::handle(&deps, resolved_event(correlation_id))
        .await
        .unwrap_or_else(|e| panic!("the retry starts the build: {e}"));
    assert!(
        matches!(outcome, gantry_start_build::Outcome::Started(_)),
        "{outcome:?}"
    );
    assert_eq!(world.builds().await.len(), builds_before + 1);
    assert_eq!(ours(world.proxy.forwarded(START_BUILD)).len(), 1);
    let published = world.published(NOW).await;
    assert_eq!(types(&published), vec!["Build Started"]);

    // A third delivery of the event (EventBridge is at least once).
    let again = gantry_start_build::handle(&deps, resolved_event(correlation_id))
        .await
        .unwrap_or_else(|e| panic!("a replay: {e}"));
    assert!(
        matches!(again, gantry_start_build::Outcome::Duplicate { .. }),
        "{again:?}"
    );
    assert_eq!(world.builds().await.len(), builds_before + 1);
}

#[tokio::test(flavor = "current_thread")]
async fn start_build_faults_fail_the_invocation_release_the_claim_and_the_retry_starts_once() {
    let world = World::start(&config()).await;
    // CodeBuild throttling past the SDK's retries.
    start_fails_then_starts_once(
        &world,
        Match::target(START_BUILD),
        Fault::throttling(),
        "fc000000-0000-4000-8000-000000000001",
    )
    .await;
    let throttled = world
        .proxy
        .requests()
        .iter()
        .filter(|r| r.faulted && r.target.as_deref() == Some(START_BUILD))
        .count();
    assert_eq!(throttled, 3, "standard retry mode: 3 attempts, one token");
    // CodeBuild failing with 500.
    start_fails_then_starts_once(
        &world,
        Match::target(START_BUILD),
        Fault::internal_error(),
        "fc000000-0000-4000-8000-000000000002",
    )
    .await;
    // CodeBuild stalled past the timeout.
    start_fails_then_starts_once(
        &world,
        Match::target(START_BUILD),
        Fault::Stall(STALL),
        "fc000000-0000-4000-8000-000000000003",
    )
    .await;
    // S3 (the start record) unreachable: fails before asking CodeBuild.
    start_fails_then_starts_once(
        &world,
        Match::path(None, &format!("/{}/", names::BUCKET)),
        Fault::Drop,
        "fc000000-0000-4000-8000-000000000004",
    )
    .await;
    // Every StartBuild of a correlation id carried its one token.
    for id in 1..=4 {
        let correlation_id = format!("fc000000-0000-4000-8000-00000000000{id}");
        let token = gantry_start_build::store::start_token(&correlation_id, names::PROJECT);
        let calls = world.proxy.calls(START_BUILD);
        let with_token = calls
            .iter()
            .filter(|c| c["idempotencyToken"] == token.as_str())
            .count();
        let of_ours = calls
            .iter()
            .filter(|c| {
                c["environmentVariablesOverride"]
                    .as_array()
                    .is_some_and(|vars| {
                        vars.iter().any(|v| {
                            v["name"] == "GANTRY_DELIVERY_ID"
                                && v["value"] == correlation_id.as_str()
                        })
                    })
            })
            .count();
        assert_eq!(with_token, of_ours, "{correlation_id}");
    }
}

// ----------------------------------------------------------- build-events

/// build-events on a `Build Skipped` (a `success` status saying why): the
/// status post fails, the invocation fails; the retry posts it once; a
/// replay posts nothing. Chat failures are covered in `build_events.rs`
/// (`a_chat_that_fails_*`): they never hold the status back.
async fn status_fails_then_posts_once(first: ResponseTemplate, delivery: &str) {
    let world = World::start(SKIP_CONFIG).await;
    let event = world.skipped(delivery).await;
    Mock::given(method("POST"))
        .and(path_regex(STATUSES_PATH))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&world.github)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(STATUSES_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
        .mount(&world.github)
        .await;
    let deps = world.build_events_deps();

    let began = Instant::now();
    let err = gantry_build_events::handle_event(&deps, &event)
        .await
        .expect_err("the invocation fails, so Lambda retries it");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert!(
        matches!(err, gantry_build_events::HandlerError::GitHub(ref e) if e.is_transient()),
        "{err}"
    );

    let report = gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("the retry posts the status");
    assert!(report.posted.is_some(), "{report:?}");
    let replay = gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("handled");
    assert_eq!(replay.posted, None);

    let posts = world
        .github
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path().contains("/statuses/"))
        .count();
    assert_eq!(posts, 2, "the failed attempt and the one that posted");
}

/// A cold build-events reads what a report needs from SSM (the
/// configuration, GitHub's token, the page key) in one request, not one
/// each; the next report reads none (they are cached).
#[tokio::test(flavor = "current_thread")]
async fn a_cold_reporter_reads_its_parameters_in_one_request() {
    let world = World::start(SKIP_CONFIG).await;
    let delivery = "fd000000-0000-4000-8000-0000000000f1";
    let event = world.skipped(delivery).await;
    Mock::given(method("POST"))
        .and(path_regex(STATUSES_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
        .mount(&world.github)
        .await;
    // With build pages, whose links a report signs.
    let deps = stack::build_events_settings(&[
        ("GITHUB_API_URL", &world.github.uri()),
        ("GITHUB_TIMEOUT_MS", GITHUB_TIMEOUT_MS),
        (gantry_aws::pages::PAGE_URL_VAR, "https://pages.example/"),
        (
            gantry_aws::pages::PAGE_KEY_PARAMETER_VAR,
            names::PAGE_KEY_PARAMETER,
        ),
    ])
    .expect("settings")
    .deps(&world.sdk);
    let ssm_reads = |since: usize| -> Vec<gantry_local::proxy::Recorded> {
        world.proxy.requests()[since..]
            .iter()
            .filter(|r| {
                r.target
                    .as_deref()
                    .is_some_and(|t| t.starts_with("AmazonSSM."))
            })
            .cloned()
            .collect()
    };

    let before = world.proxy.requests().len();
    let report = gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("reported");
    assert!(report.posted.is_some(), "{report:?}");
    let reads = ssm_reads(before);
    let targets: Vec<Option<&str>> = reads.iter().map(|r| r.target.as_deref()).collect();
    assert_eq!(targets, [Some("AmazonSSM.GetParameters")]);
    let asked = reads[0].json()["Names"].clone();
    for name in [
        names::CONFIG_PARAMETER,
        names::GITHUB_TOKEN_PARAMETER,
        names::PAGE_KEY_PARAMETER,
    ] {
        assert!(
            asked
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n == name)),
            "{name} in {asked}"
        );
    }

    let before = world.proxy.requests().len();
    gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("handled");
    assert!(ssm_reads(before).is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn build_events_with_github_statuses_failing_5xx_fails_and_the_retry_posts_once() {
    status_fails_then_posts_once(
        ResponseTemplate::new(500).set_body_string("{}"),
        "fd000000-0000-4000-8000-000000000001",
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn build_events_with_github_statuses_stalled_fails_in_time_and_the_retry_posts_once() {
    status_fails_then_posts_once(
        ResponseTemplate::new(201)
            .set_body_string("{}")
            .set_delay(Duration::from_secs(1)),
        "fd000000-0000-4000-8000-000000000002",
    )
    .await;
}

// ------------------------------------------------------- AWS entirely down

/// A loopback port nothing listens on: every connection is refused.
fn refused_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Must end, with an error, well before any function's Lambda timeout.
async fn in_time<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung with AWS down"))
}

#[tokio::test(flavor = "current_thread")]
async fn with_the_aws_endpoint_down_every_function_fails_in_time_without_panicking() {
    // The chain once, healthy, for real events to replay.
    let world = World::start(&config()).await;
    world.github_serves_the_buildspec().await;
    assert_eq!(
        world
            .deliver("fe000000-0000-4000-8000-000000000001")
            .await
            .status,
        202
    );
    let functions = LocalFunctions::new(
        &world.sdk,
        &GitHubUrls {
            contents_api: &world.github.uri(),
            with_token: true,
            statuses_api: &world.github.uri(),
            app: None,
            page_url: None,
        },
    )
    .expect("functions");
    let events = world.local.pump(&functions).await;
    let detail = |t: &str| {
        events
            .iter()
            .find(|o| o.detail_type == t)
            .map(|o| o.detail.clone())
            .unwrap_or_else(|| panic!("no {t} in {:?}", types(&events)))
    };

    let down = function_sdk(&refused_endpoint()).await;
    let began = Instant::now();

    let webhook = stack::webhook_settings(&[]).expect("settings").deps(&down);
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let headers = github_headers(
        "push",
        "fe000000-0000-4000-8000-000000000002",
        &body,
        SECRET,
    );
    let reply = in_time("webhook", gantry_webhook::handle(&webhook, &headers, &body)).await;
    assert_eq!(reply.status, 503, "{}", reply.body);

    let validate = World::validate_deps_for(&down, &world.github.uri());
    let requested = serde_json::from_value(detail("Build Requested")).expect("event");
    let err = in_time(
        "validate-buildspec",
        gantry_validate_buildspec::handle(&validate, requested),
    )
    .await
    .expect_err("fails");
    assert!(err.to_string().contains("connect"), "{err}");

    let inject = stack::inject_secrets_settings(&[])
        .expect("settings")
        .deps(&down);
    let validated = serde_json::from_value(detail("Buildspec Validated")).expect("event");
    in_time(
        "inject-secrets",
        gantry_inject_secrets::handle(&inject, validated),
    )
    .await
    .expect_err("fails");

    let start = stack::start_build_settings(&[])
        .expect("settings")
        .deps(&down);
    let mut resolved: gantry_core::events::SecretsResolved =
        serde_json::from_value(detail("Secrets Resolved")).expect("event");
    resolved.correlation_id = "fe000000-0000-4000-8000-000000000003".into();
    in_time("start-build", gantry_start_build::handle(&start, resolved))
        .await
        .expect_err("fails");

    let build_events = stack::build_events_settings(&[("GITHUB_API_URL", &world.github.uri())])
        .expect("settings")
        .deps(&down);
    let started = json!({"source": "gantry", "detail-type": "Build Started", "detail": detail("Build Started")});
    in_time(
        "build-events",
        gantry_build_events::handle_event(&build_events, &started),
    )
    .await
    .expect_err("fails");

    let reconcile = stack::reconcile_settings(&[("GITHUB_API_URL", &world.github.uri())])
        .expect("settings")
        .deps(&down);
    in_time("reconcile", gantry_reconcile::reconcile(&reconcile))
        .await
        .expect_err("fails");

    // pipeline-action: the artifact cannot be read, and the failure cannot
    // be reported to CodePipeline either (which then times the job out).
    let job_text = std::fs::read_to_string(
        gantry_e2e::corpus().join("events/06_rust_example-codepipeline_job-event.json"),
    )
    .expect("corpus job event");
    let job = serde_json::from_str(&job_text).expect("a CodePipeline job event");
    let pipeline = gantry_pipeline_action::Deps {
        codepipeline: aws_sdk_codepipeline::Client::new(&down),
        sdk: down.clone(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    in_time(
        "pipeline-action",
        gantry_pipeline_action::handle(&pipeline, job, deadline),
    )
    .await
    .expect_err("fails");

    // Refused connections fail fast: seven functions in a few seconds.
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
    // Nothing reached the stack while it was "down".
    assert_eq!(
        world.builds().await.len(),
        1,
        "only the healthy run's build"
    );
}

impl World {
    fn validate_deps_for(sdk: &SdkConfig, github: &str) -> gantry_validate_buildspec::Deps {
        gantry_validate_buildspec::Settings::from_env(|name| match name {
            "GITHUB_API_URL" => Some(github.to_owned()),
            "GITHUB_TOKEN_PARAMETER" => Some(names::GITHUB_TOKEN_PARAMETER.to_owned()),
            "ARTIFACT_BUCKET" => Some(names::BUCKET.to_owned()),
            _ => None,
        })
        .expect("settings")
        .deps(sdk)
    }
}
