//! The attacks and accidents of issue 11, each played against the chain
//! (the moto server over HTTP, a loopback GitHub): a failed commit turned
//! green without a build, one repository's build reaching another's
//! secrets, a signed delivery replayed into new builds, an effect lost to a
//! function that died holding its claim. docs/RELIABILITY.md's "Threats"
//! table names the test for each.

use std::time::Duration;

use gantry_aws::records::{Acquired, Records};
use gantry_core::deadline::Deadline;
use gantry_core::events::now_ms;
use gantry_core::records::{Effect, Holder};
use gantry_e2e::{LocalStack, SECRET, corpus, corpus_file, github_headers};
use gantry_local::functions::{GitHubUrls, LocalFunctions};
use gantry_local::stack::{self, names};
use gantry_local::tap::Observed;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";
/// The corpus pull request's head commit and branch.
const PR_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const PR_BRANCH: &str = "changes";

/// Pushes build on the default branch only; pull requests always.
const CONFIG: &str = "\
version: 1
repositories:
  - name: Codertocat/*
    project: gantry-dev
";

struct World {
    local: LocalStack,
    functions: LocalFunctions,
    webhook: gantry_webhook::Deps,
    github: MockServer,
}

impl World {
    async fn start(config: &str, webhook_env: &[(&str, &str)]) -> World {
        let local = LocalStack::start(config).await;
        let github = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path_regex("^/repos/Codertocat/Hello-World/contents/"))
            .respond_with(ResponseTemplate::new(200).set_body_string(BUILDSPEC))
            .mount(&github)
            .await;
        Mock::given(method("POST"))
            .and(path_regex("^/repos/Codertocat/Hello-World/statuses/"))
            .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
            .mount(&github)
            .await;
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
        let webhook = stack::webhook_settings(webhook_env)
            .expect("settings")
            .deps(&local.sdk);
        World {
            local,
            functions,
            webhook,
            github,
        }
    }

    async fn deliver(&self, event: &str, delivery_id: &str, body: &[u8]) -> gantry_webhook::Reply {
        let headers = github_headers(event, delivery_id, body, SECRET);
        gantry_webhook::handle(&self.webhook, &headers, body).await
    }

    async fn pump(&self) -> Vec<Observed> {
        self.local.pump(&self.functions).await
    }

    /// (state, description) of each status GitHub received for `sha`.
    async fn statuses(&self, sha: &str) -> Vec<(String, String)> {
        self.github
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().ends_with(&format!("/statuses/{sha}")))
            .map(|r| {
                let b: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
                (s("state"), s("description"))
            })
            .collect()
    }

    fn events_deps(&self) -> gantry_build_events::Deps {
        stack::build_events_settings(&[("GITHUB_API_URL", &self.github.uri())])
            .expect("settings")
            .deps(&self.local.sdk)
    }

    fn records(&self) -> Records {
        Records::new(aws_sdk_s3::Client::new(&self.local.sdk), names::BUCKET)
    }
}

fn json_of(file: &str) -> Value {
    serde_json::from_slice(&corpus_file(file)).expect("corpus JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

fn outcome(reply: &gantry_webhook::Reply) -> String {
    let v: Value = serde_json::from_str(&reply.body).unwrap_or_default();
    v["outcome"].as_str().unwrap_or_default().to_owned()
}

fn detail_types(events: &[Observed]) -> Vec<&str> {
    events.iter().map(|o| o.detail_type.as_str()).collect()
}

/// The corpus's CodeBuild state change, about `build_id`, ended `status`.
fn codebuild_event(build_id: &str, status: &str) -> Value {
    let text = std::fs::read_to_string(corpus().join("events/09_doc_codebuild_state_change.json"))
        .expect("corpus event");
    let mut event: Value = serde_json::from_str(&text).expect("JSON");
    event["detail"]["build-id"] = json!(format!(
        "arn:aws:codebuild:us-east-1:123456789012:build/{build_id}"
    ));
    event["detail"]["project-name"] = json!(names::PROJECT);
    event["detail"]["build-status"] = json!(status);
    event
}

fn started_build(events: &[Observed]) -> String {
    events
        .iter()
        .find(|o| o.detail_type == "Build Started")
        .and_then(|o| o.detail["build_id"].as_str())
        .expect("a build started")
        .to_owned()
}

// --- 1. A commit's status comes from a build, not from a PR's title ------

/// A contributor whose build failed puts `[skip ci]` in the title and
/// reopens the pull request: before, that posted `success` over the
/// failure; now the pull request builds.
#[tokio::test(flavor = "current_thread")]
async fn a_pull_request_titled_skip_ci_still_builds() {
    let world = World::start(CONFIG, &[]).await;
    let mut pr = json_of("10_pull_request__opened.payload.json");
    pr["action"] = json!("reopened");
    pr["pull_request"]["title"] = json!("[skip ci] Update the README with new information.");
    let reply = world
        .deliver(
            "pull_request",
            "5e1a0001-0000-4000-8000-000000000001",
            &bytes(&pr),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(outcome(&reply), "accepted", "{}", reply.body);
    let events = world.pump().await;
    assert!(
        detail_types(&events).contains(&"Build Started"),
        "{:?}",
        detail_types(&events)
    );
    assert!(!detail_types(&events).contains(&"Build Skipped"));
    world.local.moto.stop().await;
}

/// The pull request's build failed; then a skip for the same commit and
/// context arrives (a push of that commit to a branch that does not build,
/// late or redelivered). Before, its `success` replaced the failure.
#[tokio::test(flavor = "current_thread")]
async fn a_skip_never_replaces_a_builds_status_on_the_same_commit() {
    let world = World::start(CONFIG, &[]).await;
    let pr = json_of("10_pull_request__opened.payload.json");
    let reply = world
        .deliver(
            "pull_request",
            "5e1a0002-0000-4000-8000-000000000001",
            &bytes(&pr),
        )
        .await;
    assert_eq!(outcome(&reply), "accepted", "{}", reply.body);
    let id = started_build(&world.pump().await);
    gantry_build_events::handle_event(&world.events_deps(), &codebuild_event(&id, "FAILED"))
        .await
        .expect("reported");
    let before = world.statuses(PR_SHA).await;
    assert_eq!(
        before.last().map(|s| s.0.as_str()),
        Some("failure"),
        "{before:?}"
    );

    // The same commit pushed to its branch, which push rules do not build.
    let mut push = json_of("07_push__with-new-branch.payload.json");
    push["ref"] = json!(format!("refs/heads/{PR_BRANCH}"));
    push["after"] = json!(PR_SHA);
    push["head_commit"]["id"] = json!(PR_SHA);
    let reply = world
        .deliver(
            "push",
            "5e1a0002-0000-4000-8000-000000000002",
            &bytes(&push),
        )
        .await;
    assert_eq!(outcome(&reply), "skipped", "{}", reply.body);
    let events = world.pump().await;
    assert_eq!(detail_types(&events), ["Build Skipped"]);
    assert_eq!(
        world.statuses(PR_SHA).await,
        before,
        "the skip posted over the build's failure"
    );

    // A skip of a commit no build touched still ends it with `success`.
    let mut other = push.clone();
    other["after"] = json!("1111111111111111111111111111111111111111");
    world
        .deliver(
            "push",
            "5e1a0002-0000-4000-8000-000000000003",
            &bytes(&other),
        )
        .await;
    world.pump().await;
    let skipped = world
        .statuses("1111111111111111111111111111111111111111")
        .await;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].0, "success");
    world.local.moto.stop().await;
}

// --- 2. One repository's build cannot reach another's secrets ------------

/// gantry.yaml maps a repository's build to a parameter of another trust
/// domain (which exists): refused by name before any build starts, as
/// that domain's role would refuse it inside the build.
#[tokio::test(flavor = "current_thread")]
async fn a_build_cannot_reference_another_trust_domains_secrets() {
    let config = &gantry_e2e::every_push_config(
        "    secrets:\n      OWN_TOKEN: /gantry/dev/token\n      DEPLOY_KEY: /gantry/web/deploy-key\n",
    );
    let world = World::start(config, &[]).await;
    let ssm = aws_sdk_ssm::Client::new(&world.local.sdk);
    for name in ["/gantry/dev/token", "/gantry/web/deploy-key"] {
        ssm.put_parameter()
            .name(name)
            .value("a-value-never-read")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("seed");
    }
    let body = corpus_file("07_push__with-new-branch.payload.json");
    world
        .deliver("push", "5e1a0003-0000-4000-8000-000000000001", &body)
        .await;
    let events = world.pump().await;
    let rejected = events
        .iter()
        .find(|o| o.detail_type == "Build Rejected")
        .unwrap_or_else(|| panic!("not rejected: {:?}", detail_types(&events)));
    assert_eq!(rejected.detail["stage"], "secrets");
    let problems = rejected.detail["secrets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["parameter"], "/gantry/web/deploy-key");
    let reason = rejected.detail["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("outside /gantry/dev/, the only path builds of gantry-dev may read"),
        "{reason}"
    );
    assert!(!detail_types(&events).contains(&"Build Started"));
    world.local.moto.stop().await;
}

/// Runs the `pre_build` command of `buildspecs/docker.yml` that contains
/// `marker`, in bash with only `vars` (and PATH) set, followed by `then`;
/// its standard output.
fn run_docker_pre_build(marker: &str, then: &str, vars: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(gantry_e2e::workspace().join("buildspecs/docker.yml"))
        .expect("docker.yml");
    let root = gantry_core::yaml::parse(&text, gantry_core::yaml::Limits::default())
        .expect("parses")
        .expect("a document");
    let commands = root
        .get("phases")
        .and_then(|p| p.get("pre_build"))
        .and_then(|p| p.get("commands"))
        .map(gantry_core::yaml::Node::to_json)
        .expect("pre_build commands");
    let command = commands
        .as_array()
        .and_then(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .find(|c| c.contains(marker))
        })
        .unwrap_or_else(|| panic!("no pre_build command with {marker}"));
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{command}\n{then}"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tags `buildspecs/docker.yml` pushes, as its pre_build command
/// computes them in bash with the variables start-build sets.
fn docker_tags(vars: &[(&str, &str)]) -> String {
    let stdout = run_docker_pre_build("TAGS=", "printf '\\nTAGS=%s' \"$TAGS\"", vars);
    stdout
        .rsplit_once("\nTAGS=")
        .map(|(_, tags)| tags.to_owned())
        .unwrap_or(stdout)
}

/// A fork's branch called `main`, approved or not, must never push
/// `:main`: a pull request's image is tagged `pr-<n>` and with its commit.
#[test]
fn a_pull_requests_image_is_never_tagged_with_a_branch() {
    let sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    let pr = docker_tags(&[
        ("GANTRY_COMMIT", sha),
        ("GANTRY_TRIGGER", "pull_request"),
        ("GANTRY_BRANCH", "main"),
        ("GANTRY_PR_NUMBER", "7"),
    ]);
    assert_eq!(pr, format!("{sha} pr-7"));
    let push = docker_tags(&[
        ("GANTRY_COMMIT", sha),
        ("GANTRY_TRIGGER", "push"),
        ("GANTRY_BRANCH", "release/2.0"),
    ]);
    assert_eq!(push, format!("{sha} release-2.0"));
    let tag = docker_tags(&[
        ("GANTRY_COMMIT", sha),
        ("GANTRY_TRIGGER", "push"),
        ("GANTRY_TAG", "v1.0"),
    ]);
    assert_eq!(tag, format!("{sha} v1.0"));
}

// --- 3. A signed delivery cannot be replayed into another build ----------

/// Anyone holding one signed body (a repository admin sees them under
/// Recent Deliveries) could resend it under fresh delivery ids: before,
/// each was a new build.
#[tokio::test(flavor = "current_thread")]
async fn a_signed_body_resent_under_a_new_delivery_id_starts_nothing() {
    let world = World::start(CONFIG, &[]).await;
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let first = world
        .deliver("push", "5e1a0004-0000-4000-8000-000000000001", &body)
        .await;
    assert_eq!(outcome(&first), "accepted", "{}", first.body);
    for i in 2..5 {
        let replay = world
            .deliver(
                "push",
                &format!("5e1a0004-0000-4000-8000-00000000000{i}"),
                &body,
            )
            .await;
        assert_eq!(replay.status, 200, "{}", replay.body);
        assert_eq!(outcome(&replay), "duplicate");
    }
    let events = world.pump().await;
    let started: Vec<&Observed> = events
        .iter()
        .filter(|o| o.detail_type == "Build Started")
        .collect();
    assert_eq!(started.len(), 1, "{:?}", detail_types(&events));
    world.local.moto.stop().await;
}

/// With a replay window, an old signed body is refused whatever its id; a
/// fresh one is accepted.
#[tokio::test(flavor = "current_thread")]
async fn a_delivery_signed_before_the_replay_window_is_refused() {
    let world = World::start(CONFIG, &[("REPLAY_WINDOW_SECONDS", "3600")]).await;
    // The corpus push was signed in 2019.
    let old = corpus_file("07_push__with-new-branch.payload.json");
    let reply = world
        .deliver("push", "5e1a0005-0000-4000-8000-000000000001", &old)
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("replay window"), "{}", reply.body);
    assert!(world.local.logged(Duration::ZERO).await.is_empty());

    let mut fresh = json_of("07_push__with-new-branch.payload.json");
    fresh["repository"]["pushed_at"] = json!(now_ms() / 1000);
    let reply = world
        .deliver(
            "push",
            "5e1a0005-0000-4000-8000-000000000002",
            &bytes(&fresh),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let mut pr = json_of("10_pull_request__opened.payload.json");
    let reply = world
        .deliver(
            "pull_request",
            "5e1a0005-0000-4000-8000-000000000003",
            &bytes(&pr),
        )
        .await;
    assert_eq!(reply.status, 403, "an old pull request: {}", reply.body);
    pr["pull_request"]["updated_at"] = json!("2099-01-01T00:00:00Z");
    let reply = world
        .deliver(
            "pull_request",
            "5e1a0005-0000-4000-8000-000000000004",
            &bytes(&pr),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    world.local.moto.stop().await;
}

/// A replayed old push (its own signed body, a fresh delivery id) arrives
/// after the newest push of the branch: before, it was ordered by arrival,
/// stopped the newest build as superseded and would push the old image.
#[tokio::test(flavor = "current_thread")]
async fn a_replayed_old_push_never_supersedes_the_newest_build() {
    let config = &gantry_e2e::every_push_config("");
    let world = World::start(config, &[]).await;
    let push = |sha: &str, pushed_at: u64| {
        let mut p = json_of("07_push__with-new-branch.payload.json");
        p["after"] = json!(sha);
        p["head_commit"]["id"] = json!(sha);
        p["repository"]["pushed_at"] = json!(pushed_at);
        p["created"] = json!(false);
        bytes(&p)
    };
    let newest = "2222222222222222222222222222222222222222";
    let old = "1111111111111111111111111111111111111111";
    world
        .deliver(
            "push",
            "5e1a0006-0000-4000-8000-000000000001",
            &push(newest, 1_700_000_600),
        )
        .await;
    let first = world.pump().await;
    let newest_build = started_build(&first);
    // The old push, replayed now.
    let reply = world
        .deliver(
            "push",
            "5e1a0006-0000-4000-8000-000000000002",
            &push(old, 1_700_000_000),
        )
        .await;
    assert_eq!(outcome(&reply), "accepted", "{}", reply.body);
    let events = world.pump().await;
    assert!(
        !detail_types(&events).contains(&"Build Started"),
        "the replay started a build: {:?}",
        detail_types(&events)
    );
    let superseded: Vec<&Observed> = events
        .iter()
        .filter(|o| o.detail_type == "Build Superseded")
        .collect();
    assert_eq!(superseded.len(), 1, "{:?}", detail_types(&events));
    assert_eq!(superseded[0].detail["source"]["commit_sha"], old);
    assert_eq!(superseded[0].detail["superseded_by"]["commit_sha"], newest);
    let builds = aws_sdk_codebuild::Client::new(&world.local.sdk)
        .batch_get_builds()
        .ids(&newest_build)
        .send()
        .await
        .expect("builds");
    assert_ne!(
        builds.builds()[0].build_status().map(|s| s.as_str()),
        Some("STOPPED"),
        "the newest build was stopped"
    );
    world.local.moto.stop().await;
}

/// The corpus repository's id, and its owner's.
const REPO_ID: &str = "186853002";

async fn put_secret(world: &World, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(&world.local.sdk)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("seed a secret");
}

fn targeted(
    event: &str,
    delivery: &str,
    body: &[u8],
    secret: &str,
    target: Option<&str>,
) -> http::HeaderMap {
    let mut h = github_headers(event, delivery, body, secret);
    if let Some(id) = target {
        h.insert(
            "x-github-hook-installation-target-id",
            http::HeaderValue::from_str(id).expect("header"),
        );
        h.insert(
            "x-github-hook-installation-target-type",
            http::HeaderValue::from_static("repository"),
        );
    }
    h
}

/// A repository with its own webhook secret: a delivery about it signed
/// with the shared secret (which every repository's admin has) is refused;
/// signed with its own, accepted.
#[tokio::test(flavor = "current_thread")]
async fn a_repository_with_its_own_secret_refuses_the_shared_one() {
    let world = World::start(
        CONFIG,
        &[("WEBHOOK_TARGET_SECRETS_PATH", "/gantry/webhook-secrets/")],
    )
    .await;
    put_secret(
        &world,
        &format!("/gantry/webhook-secrets/{REPO_ID}"),
        "hello-world-own",
    )
    .await;
    let deps =
        stack::webhook_settings(&[("WEBHOOK_TARGET_SECRETS_PATH", "/gantry/webhook-secrets/")])
            .expect("settings")
            .deps(&world.local.sdk);
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let shared = targeted(
        "push",
        "5e1a0007-0000-4000-8000-000000000001",
        &body,
        SECRET,
        None,
    );
    let reply = gantry_webhook::handle(&deps, &shared, &body).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body.contains("has its own webhook secret"),
        "{}",
        reply.body
    );
    let own = targeted(
        "push",
        "5e1a0007-0000-4000-8000-000000000002",
        &body,
        "hello-world-own",
        Some(REPO_ID),
    );
    let reply = gantry_webhook::handle(&deps, &own, &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    world.local.moto.stop().await;
}

/// One repository's admin holds its own secret; signing a body about
/// another repository with it (naming either target) gets nowhere.
#[tokio::test(flavor = "current_thread")]
async fn one_repositorys_secret_cannot_sign_for_another() {
    let world = World::start(CONFIG, &[]).await;
    put_secret(&world, "/gantry/webhook-secrets/999", "mallorys-own").await;
    put_secret(
        &world,
        &format!("/gantry/webhook-secrets/{REPO_ID}"),
        "hello-world-own",
    )
    .await;
    let deps =
        stack::webhook_settings(&[("WEBHOOK_TARGET_SECRETS_PATH", "/gantry/webhook-secrets/")])
            .expect("settings")
            .deps(&world.local.sdk);
    // A body about Codertocat/Hello-World, forged by repository 999's admin.
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let as_own = targeted(
        "push",
        "5e1a0008-0000-4000-8000-000000000001",
        &body,
        "mallorys-own",
        Some("999"),
    );
    let reply = gantry_webhook::handle(&deps, &as_own, &body).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body.contains("about repository 186853002"),
        "{}",
        reply.body
    );
    let as_victim = targeted(
        "push",
        "5e1a0008-0000-4000-8000-000000000002",
        &body,
        "mallorys-own",
        Some(REPO_ID),
    );
    let reply = gantry_webhook::handle(&deps, &as_victim, &body).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(world.local.logged(Duration::ZERO).await.is_empty());
    world.local.moto.stop().await;
}

// --- 5. No effect lost or doubled by a crash between claim and effect ----

fn holder(id: &str, deadline_ms: u64) -> Holder {
    Holder {
        id: id.to_owned(),
        deadline: Deadline::at_epoch_ms(deadline_ms),
    }
}

/// A webhook that claimed a delivery and was killed (its timeout) before
/// publishing: before, the user's redelivery was a "duplicate" forever and
/// the commit never built. Once the claim's deadline has passed, the
/// redelivery takes it over and publishes.
#[tokio::test(flavor = "current_thread")]
async fn a_redelivery_takes_over_the_claim_of_a_webhook_that_died() {
    let world = World::start(CONFIG, &[]).await;
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let id = "5e1a0009-0000-4000-8000-000000000001";
    let ledger = gantry_aws::ledger::DeliveryLedger::new(
        aws_sdk_s3::Client::new(&world.local.sdk),
        names::BUCKET,
    );
    // The dead request: claimed, with a deadline now past, never completed.
    let dead = holder(id, now_ms() - 60_000);
    let claim = ledger
        .claim(&gantry_aws::ledger::body_digest(&body), &dead)
        .await
        .expect("claim");
    assert!(matches!(claim, gantry_aws::ledger::Claim::New(_)));
    let reply = world.deliver("push", id, &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(outcome(&reply), "accepted");
    assert_eq!(world.local.logged(Duration::ZERO).await.len(), 1);
    // Done now: the next redelivery is a duplicate.
    let again = world.deliver("push", id, &body).await;
    assert_eq!(outcome(&again), "duplicate");
    world.local.moto.stop().await;
}

/// GitHub's redelivery racing the original (seen under `gantry load`): two
/// sends of one delivery claim at once. Exactly one of them may publish;
/// when the ledger claimed two keys, each could win one, give it back as a
/// duplicate, and the delivery was never published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sends_of_one_delivery_at_once_publish_it_exactly_once() {
    let world = World::start(CONFIG, &[]).await;
    let ledger = std::sync::Arc::new(gantry_aws::ledger::DeliveryLedger::new(
        aws_sdk_s3::Client::new(&world.local.sdk),
        names::BUCKET,
    ));
    for n in 0..40 {
        let id = format!("5e1a000b-0000-4000-8000-{n:012}");
        let digest = gantry_aws::ledger::body_digest(id.as_bytes());
        let claim = |who: &'static str| {
            let (ledger, digest) = (ledger.clone(), digest.clone());
            tokio::spawn(async move {
                ledger
                    .claim(&digest, &holder(who, now_ms() + 60_000))
                    .await
                    .expect("claim")
            })
        };
        let (a, b) = tokio::join!(claim("original"), claim("redelivery"));
        let new = [a.expect("task"), b.expect("task")]
            .iter()
            .filter(|c| matches!(c, gantry_aws::ledger::Claim::New(_)))
            .count();
        assert_eq!(new, 1, "delivery {id}: {new} of the two sends claimed it");
    }
    world.local.moto.stop().await;
}

/// build-events claimed a final status and died before posting it: the
/// retry, after the claim's deadline, posts it (before: "already posted").
/// A claim whose holder is still alive is left to it, and the retry fails
/// so that it is tried again later.
#[tokio::test(flavor = "current_thread")]
async fn a_status_claimed_by_an_invocation_that_died_is_posted_by_the_retry() {
    let world = World::start(CONFIG, &[]).await;
    let pr = json_of("10_pull_request__opened.payload.json");
    world
        .deliver(
            "pull_request",
            "5e1a000a-0000-4000-8000-000000000001",
            &bytes(&pr),
        )
        .await;
    let id = started_build(&world.pump().await);
    let records = world.records();
    let final_status = Effect::Status {
        subject: &id,
        state: None,
    };
    // A live holder: the event is retried, nothing posted.
    let alive = records
        .acquire(&final_status, &holder("alive", now_ms() + 120_000))
        .await
        .expect("acquire");
    let Acquired::Won(lease) = alive else {
        panic!("the first claim wins")
    };
    let event = codebuild_event(&id, "SUCCEEDED");
    let deps = world.events_deps();
    let busy = gantry_build_events::handle_event(&deps, &event).await;
    assert!(
        matches!(busy, Err(gantry_build_events::HandlerError::Busy { .. })),
        "{busy:?}"
    );
    assert_eq!(world.statuses(PR_SHA).await.len(), 1, "pending only");
    records.release(lease).await.expect("release");

    // A dead holder: its deadline passed; the retry takes over and posts.
    let dead = records
        .acquire(&final_status, &holder("dead", now_ms() - 60_000))
        .await
        .expect("acquire");
    assert!(matches!(dead, Acquired::Won(_)));
    let report = gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("handled");
    assert_eq!(
        report.posted,
        Some(gantry_core::github::statuses::StatusState::Success)
    );
    let again = gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("handled");
    assert_eq!(again.posted, None, "posted once");
    world.local.moto.stop().await;
}

/// Of several takers of one expired claim, exactly one wins.
#[tokio::test(flavor = "current_thread")]
async fn of_several_takers_of_an_expired_claim_exactly_one_wins() {
    let world = World::start(CONFIG, &[]).await;
    let records = world.records();
    let effect = Effect::Status {
        subject: "race",
        state: None,
    };
    let dead = records
        .acquire(&effect, &holder("dead", now_ms() - 60_000))
        .await
        .expect("acquire");
    assert!(matches!(dead, Acquired::Won(_)));
    let takers: Vec<Holder> = (0..4)
        .map(|i| holder(&format!("taker-{i}"), now_ms() + 60_000))
        .collect();
    let results = futures_join(&records, &effect, &takers).await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Ok(Acquired::Won(_))))
        .count();
    assert_eq!(won, 1, "{results:?}");
    world.local.moto.stop().await;
}

async fn futures_join(
    records: &Records,
    effect: &Effect<'_>,
    holders: &[Holder],
) -> Vec<Result<Acquired, gantry_aws::records::RecordError>> {
    let (a, b, c, d) = tokio::join!(
        records.acquire(effect, &holders[0]),
        records.acquire(effect, &holders[1]),
        records.acquire(effect, &holders[2]),
        records.acquire(effect, &holders[3]),
    );
    vec![a, b, c, d]
}

/// With too little time left to post, build-events claims nothing and
/// fails, so that the retry (with a fresh deadline) posts.
#[tokio::test(flavor = "current_thread")]
async fn no_status_is_claimed_without_the_time_to_post_it() {
    let world = World::start(CONFIG, &[]).await;
    let pr = json_of("10_pull_request__opened.payload.json");
    world
        .deliver(
            "pull_request",
            "5e1a000b-0000-4000-8000-000000000001",
            &bytes(&pr),
        )
        .await;
    let id = started_build(&world.pump().await);
    let deps = world.events_deps();
    let event = codebuild_event(&id, "FAILED");
    let soon = Deadline::after(Duration::from_secs(2));
    let err = gantry_build_events::handle_event_until(&deps, &event, soon).await;
    assert!(
        matches!(err, Err(gantry_build_events::HandlerError::OutOfTime(_))),
        "{err:?}"
    );
    let final_status = Effect::Status {
        subject: &id,
        state: None,
    };
    assert!(
        !world.records().claimed(&final_status).await.expect("head"),
        "claimed without the time to post"
    );
    let report = gantry_build_events::handle_event(&deps, &event)
        .await
        .expect("the retry posts");
    assert!(report.posted.is_some());
    world.local.moto.stop().await;
}

// --- 4. Only people who can push approve a fork's build -----------------

const APPROVAL_CONFIG: &str = "\
version: 1
repositories:
  - name: Codertocat/*
    project: gantry-dev
    forks: approval
    secrets:
      TOKEN: /gantry/dev/token
";

/// The corpus pull request, from a fork, at `sha`.
fn fork_pr(action: &str, sha: &str) -> Value {
    let file = if action == "labeled" {
        "16_pull_request__labeled.payload.json"
    } else {
        "10_pull_request__opened.payload.json"
    };
    let mut pr = json_of(file);
    pr["action"] = json!(action);
    pr["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/Hello-World");
    pr["pull_request"]["head"]["sha"] = json!(sha);
    pr
}

fn labeled_by(sha: &str, login: &str) -> Vec<u8> {
    let mut pr = fork_pr("labeled", sha);
    pr["label"]["name"] = json!("gantry:approved");
    pr["sender"]["login"] = json!(login);
    bytes(&pr)
}

/// GitHub's answer about `login`'s permission on the corpus repository.
async fn permission(world: &World, login: &str, permission: &str, role: &str) {
    Mock::given(method("GET"))
        .and(wiremock::matchers::path(format!(
            "/repos/Codertocat/Hello-World/collaborators/{login}/permission"
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"permission": permission, "role_name": role})),
        )
        .mount(&world.github)
        .await;
}

async fn approval_world() -> World {
    let world = World::start(APPROVAL_CONFIG, &[]).await;
    put_secret(&world, "/gantry/dev/token", "a-value-never-read").await;
    permission(&world, "trina", "read", "triage").await;
    permission(&world, "mona", "write", "maintain").await;
    world
}

/// Whether a build started, and if so with the repository's secrets.
fn trusted_start(events: &[Observed]) -> Option<bool> {
    events
        .iter()
        .find(|o| o.detail_type == "Build Started")
        .map(|o| o.detail["trusted"] == json!(true))
}

/// The Triage role can add labels but cannot push: before, its label built
/// the fork's code with the repository's secrets.
#[tokio::test(flavor = "current_thread")]
async fn a_label_from_someone_who_cannot_push_approves_nothing() {
    let world = approval_world().await;
    world
        .deliver(
            "pull_request",
            "5e1a000c-0000-4000-8000-000000000001",
            &bytes(&fork_pr("opened", PR_SHA)),
        )
        .await;
    let held = world.pump().await;
    assert_eq!(
        detail_types(&held),
        ["Build Requested", "Buildspec Validated", "Build Held"]
    );

    world
        .deliver(
            "pull_request",
            "5e1a000c-0000-4000-8000-000000000002",
            &labeled_by(PR_SHA, "trina"),
        )
        .await;
    let events = world.pump().await;
    let ignored = events
        .iter()
        .find(|o| o.detail_type == "Approval Ignored")
        .unwrap_or_else(|| panic!("not ignored: {:?}", detail_types(&events)));
    assert!(
        ignored.detail["reason"]
            .as_str()
            .is_some_and(|r| r.contains("@trina has the triage role")),
        "{}",
        ignored.detail
    );
    assert_eq!(trusted_start(&events), None, "{:?}", detail_types(&events));

    // A maintainer's label on the same held commit builds it, with secrets.
    world
        .deliver(
            "pull_request",
            "5e1a000c-0000-4000-8000-000000000003",
            &labeled_by(PR_SHA, "mona"),
        )
        .await;
    let events = world.pump().await;
    assert_eq!(
        trusted_start(&events),
        Some(true),
        "{:?}",
        detail_types(&events)
    );
    world.local.moto.stop().await;
}

/// The label approves the commit that was held. A commit pushed after the
/// hold (the labeled delivery carries the head at labelling time) was never
/// held: before, the label built it.
#[tokio::test(flavor = "current_thread")]
async fn an_approval_applies_only_to_a_commit_that_was_held() {
    let world = approval_world().await;
    world
        .deliver(
            "pull_request",
            "5e1a000d-0000-4000-8000-000000000001",
            &bytes(&fork_pr("opened", PR_SHA)),
        )
        .await;
    world.pump().await;
    let pushed_after = "3333333333333333333333333333333333333333";
    world
        .deliver(
            "pull_request",
            "5e1a000d-0000-4000-8000-000000000002",
            &labeled_by(pushed_after, "mona"),
        )
        .await;
    let events = world.pump().await;
    let ignored = events
        .iter()
        .find(|o| o.detail_type == "Approval Ignored")
        .unwrap_or_else(|| panic!("not ignored: {:?}", detail_types(&events)));
    assert!(
        ignored.detail["reason"]
            .as_str()
            .is_some_and(|r| r.contains("3333333 was not held")),
        "{}",
        ignored.detail
    );
    assert_eq!(trusted_start(&events), None);
    world.local.moto.stop().await;
}

// --- 5. Every accepted commit ends with a final status -------------------

/// Runs the chain but leaves `held_back`'s rule undispatched, as if its
/// function failed every retry; returns that event as EventBridge sent it.
async fn pump_failing(world: &World, held_back: &str) -> Value {
    let mut failed = None;
    for _ in 0..20 {
        let batch = world.local.observed(Duration::ZERO).await;
        if batch.is_empty() {
            break;
        }
        for o in &batch {
            if o.rule == held_back {
                failed = Some(json!({
                    "version": "0",
                    "id": "e0000000-0000-4000-8000-000000000001",
                    "source": "gantry",
                    "detail-type": o.detail_type,
                    "detail": o.detail,
                }));
                continue;
            }
            world.functions.dispatch(o).await;
        }
    }
    failed.unwrap_or_else(|| panic!("nothing reached {held_back}"))
}

fn lambda_failure_record(
    event: &Value,
    error: &str,
) -> gantry_build_events::dead_letters::SqsBatch {
    serde_json::from_value(json!({"Records": [{
        "messageId": "m-0001",
        "body": json!({
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": error, "errorType": "HandlerError"},
        }).to_string(),
        "messageAttributes": {},
    }]}))
    .expect("an SQS batch")
}

/// start-build failed every retry (CodeBuild unreachable): before, the
/// event sat in a dead-letter queue and the commit stayed pending for ever.
#[tokio::test(flavor = "current_thread")]
async fn a_build_whose_start_failed_every_retry_ends_with_an_error_status() {
    let world = World::start(CONFIG, &[]).await;
    let pr = json_of("10_pull_request__opened.payload.json");
    world
        .deliver(
            "pull_request",
            "5e1a000e-0000-4000-8000-000000000001",
            &bytes(&pr),
        )
        .await;
    let failed = pump_failing(&world, "SecretsResolvedRule").await;
    assert!(world.statuses(PR_SHA).await.is_empty());
    let deps = world.events_deps();
    let batch = lambda_failure_record(
        &failed,
        "CodeBuild StartBuild failed: could not reach the service (connection failed)",
    );
    let response = gantry_build_events::dead_letters::handle_batch(
        &deps,
        &batch,
        Deadline::after(Duration::from_secs(300)),
    )
    .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let statuses = world.statuses(PR_SHA).await;
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].0, "error");
    assert!(
        statuses[0]
            .1
            .starts_with("not started: CodeBuild StartBuild failed"),
        "{statuses:?}"
    );
    // The same dead letter again (SQS delivers at least once): nothing more.
    gantry_build_events::dead_letters::handle_batch(
        &deps,
        &batch,
        Deadline::after(Duration::from_secs(300)),
    )
    .await;
    assert_eq!(world.statuses(PR_SHA).await.len(), 1);
    world.local.moto.stop().await;
}

/// A `Build Requested` EventBridge could not deliver for a day (the rule's
/// own dead-letter queue: the event itself, the error in attributes).
#[tokio::test(flavor = "current_thread")]
async fn an_event_eventbridge_could_not_deliver_ends_with_an_error_status() {
    let world = World::start(CONFIG, &[]).await;
    let pr = json_of("10_pull_request__opened.payload.json");
    world
        .deliver(
            "pull_request",
            "5e1a000f-0000-4000-8000-000000000001",
            &bytes(&pr),
        )
        .await;
    let failed = pump_failing(&world, "BuildRequestedRule").await;
    let batch: gantry_build_events::dead_letters::SqsBatch =
        serde_json::from_value(json!({"Records": [{
            "messageId": "m-0002",
            "body": failed.to_string(),
            "messageAttributes": {
                "ERROR_CODE": {"stringValue": "SDK_CLIENT_ERROR", "dataType": "String"},
                "ERROR_MESSAGE": {"stringValue": "Lambda function throttled", "dataType": "String"},
            },
        }]}))
        .expect("an SQS batch");
    let response = gantry_build_events::dead_letters::handle_batch(
        &world.events_deps(),
        &batch,
        Deadline::after(Duration::from_secs(300)),
    )
    .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let statuses = world.statuses(PR_SHA).await;
    assert_eq!(
        statuses,
        [(
            "error".to_owned(),
            "buildspec not validated: not delivered: Lambda function throttled".to_owned()
        )]
    );
    world.local.moto.stop().await;
}

/// A dead letter that cannot be handled now goes back to its queue (then
/// to the parking queue): GitHub refusing every status, here.
#[tokio::test(flavor = "current_thread")]
async fn a_dead_letter_that_fails_again_returns_to_its_queue() {
    let world = World::start(CONFIG, &[]).await;
    let pr = json_of("10_pull_request__opened.payload.json");
    world
        .deliver(
            "pull_request",
            "5e1a0010-0000-4000-8000-000000000001",
            &bytes(&pr),
        )
        .await;
    let failed = pump_failing(&world, "SecretsResolvedRule").await;
    world.github.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&world.github)
        .await;
    let response = gantry_build_events::dead_letters::handle_batch(
        &world.events_deps(),
        &lambda_failure_record(&failed, "timed out"),
        Deadline::after(Duration::from_secs(300)),
    )
    .await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "the message must go back to its queue"
    );
    world.local.moto.stop().await;
}

// --- 6. Smaller holes -----------------------------------------------------

async fn object_exists(world: &World, key: &str) -> bool {
    aws_sdk_s3::Client::new(&world.local.sdk)
        .head_object()
        .bucket(names::BUCKET)
        .key(key)
        .send()
        .await
        .is_ok()
}

/// With `PublicBadges=true` anyone can read `badges/*`: before, a private
/// repository's badge (its name, its branches, whether they build) landed
/// there too. Now only a repository gantry.yaml lists does.
#[tokio::test(flavor = "current_thread")]
async fn a_private_repositorys_badge_is_not_public_unless_listed() {
    for (listed, public) in [(false, false), (true, true)] {
        let config = format!(
            "version: 1\nrepositories:\n  - name: Codertocat/*\n    project: gantry-dev\n    public-badge: {listed}\n"
        );
        let world = World::start(&config, &[]).await;
        let mut push = json_of("07_push__with-new-branch.payload.json");
        push["repository"]["private"] = json!(true);
        world
            .deliver(
                "push",
                "5e1a0011-0000-4000-8000-000000000001",
                &bytes(&push),
            )
            .await;
        let id = started_build(&world.pump().await);
        gantry_build_events::handle_event(&world.events_deps(), &codebuild_event(&id, "SUCCEEDED"))
            .await
            .expect("reported");
        let public_key = gantry_core::badge::badge_key("Codertocat/Hello-World", "master");
        let private_key =
            gantry_core::badge::key_for("Codertocat/Hello-World", "master", true, false);
        assert_eq!(
            object_exists(&world, &public_key).await,
            public,
            "listed: {listed}"
        );
        assert_eq!(
            object_exists(&world, &private_key).await,
            !public,
            "listed: {listed}"
        );
        world.local.moto.stop().await;
    }
}

/// A flood of requests without a signature (or with a malformed one) must
/// not cost SSM a call each: it would starve genuine deliveries of SSM's
/// throughput. They are refused before any secret is read.
#[tokio::test(flavor = "current_thread")]
async fn a_request_without_a_well_formed_signature_costs_ssm_nothing() {
    let local = LocalStack::start(CONFIG).await;
    let proxy = gantry_e2e::RecordingProxy::start(local.moto.endpoint(), true)
        .await
        .expect("proxy");
    let deps = stack::webhook_settings(&[])
        .expect("settings")
        .deps(&stack::sdk_config(proxy.endpoint()).await);
    let body = corpus_file("07_push__with-new-branch.payload.json");
    for signature in [None, Some("sha1=abc"), Some("sha256=not-hex")] {
        let mut headers = github_headers(
            "push",
            "5e1a0012-0000-4000-8000-000000000001",
            &body,
            SECRET,
        );
        headers.remove("x-hub-signature-256");
        if let Some(s) = signature {
            headers.insert("x-hub-signature-256", http::HeaderValue::from_static(s));
        }
        for _ in 0..20 {
            let reply = gantry_webhook::handle(&deps, &headers, &body).await;
            assert_eq!(reply.status, 401, "{}", reply.body);
        }
    }
    assert!(
        proxy.requests().is_empty(),
        "{} AWS calls for unsigned requests",
        proxy.requests().len()
    );
    // A well-formed one reads the secret (once, then from the cache).
    let headers = github_headers(
        "push",
        "5e1a0012-0000-4000-8000-000000000002",
        &body,
        "wrong",
    );
    for _ in 0..5 {
        assert_eq!(
            gantry_webhook::handle(&deps, &headers, &body).await.status,
            401
        );
    }
    let reads = proxy.calls("AmazonSSM.GetParameters").len();
    assert!(
        (1..=2).contains(&reads),
        "{reads} secret reads for 5 forged requests"
    );
    local.moto.stop().await;
}

/// What `buildspecs/docker.yml`'s layer-cache command reads and writes, as
/// it computes them in bash with the variables start-build sets:
/// `(reads, writes)`.
fn docker_cache_keys(vars: &[(&str, &str)]) -> (String, String) {
    let stdout = run_docker_pre_build(
        "CACHE_TO=",
        "printf '\\nFROM=%s\\nTO=%s' \"$CACHE_FROM\" \"$CACHE_TO\"",
        vars,
    );
    let (_, tail) = stdout.rsplit_once("\nFROM=").expect("FROM");
    let (from, to) = tail.split_once("\nTO=").expect("TO");
    (from.to_owned(), to.to_owned())
}

/// A fork's build may read the default branch's layer cache and never
/// writes one, whatever its branch is called and even if it claims a pull
/// request number: a poisoned layer would run in the next trusted build.
/// Trusted builds write their own key only; the docker buildspec passes
/// `gantry lint`.
#[test]
fn a_forks_build_never_writes_the_layer_cache_and_keys_stay_tags() {
    const REPO: (&str, &str) = (
        "CACHE_REPO",
        "123.dkr.ecr.eu-west-1.amazonaws.com/b/build/cache",
    );
    let common = [
        REPO,
        ("GANTRY_REPOSITORY", "octo-org/Hello-World"),
        ("GANTRY_DEFAULT_BRANCH", "main"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut vars = common.to_vec();
        vars.extend_from_slice(extra);
        docker_cache_keys(&vars)
    };
    let fork = with(&[
        ("GANTRY_TRUSTED", "false"),
        ("GANTRY_TRIGGER", "pull_request"),
        ("GANTRY_BRANCH", "main"),
        ("GANTRY_PR_NUMBER", "7"),
        ("GANTRY_PR_BASE_BRANCH", "release"),
    ]);
    assert_eq!(
        fork,
        ("octo-org-Hello-World--main".into(), String::new()),
        "a fork reads main's only and writes nothing"
    );
    let unset = with(&[("GANTRY_TRIGGER", "push"), ("GANTRY_BRANCH", "main")]);
    assert_eq!(unset.1, "", "GANTRY_TRUSTED unset is untrusted");
    let push = with(&[
        ("GANTRY_TRUSTED", "true"),
        ("GANTRY_TRIGGER", "push"),
        ("GANTRY_BRANCH", "feature/x"),
    ]);
    assert_eq!(
        push,
        (
            "octo-org-Hello-World--feature-x octo-org-Hello-World--main".into(),
            "octo-org-Hello-World--feature-x".into()
        )
    );
    let pull_request = with(&[
        ("GANTRY_TRUSTED", "true"),
        ("GANTRY_TRIGGER", "pull_request"),
        ("GANTRY_BRANCH", "main"),
        ("GANTRY_PR_NUMBER", "8"),
        ("GANTRY_PR_BASE_BRANCH", "release"),
    ]);
    assert_eq!(
        pull_request,
        (
            "octo-org-Hello-World--pr-8 octo-org-Hello-World--release octo-org-Hello-World--main"
                .into(),
            "octo-org-Hello-World--pr-8".into()
        ),
        "a pull request's own key, never its head branch's"
    );
    // A branch name past Docker's 128 characters: still one valid tag.
    let long = "b".repeat(300);
    let (_, to) = with(&[
        ("GANTRY_TRUSTED", "true"),
        ("GANTRY_TRIGGER", "push"),
        ("GANTRY_BRANCH", &long),
    ]);
    assert!(to.len() <= 128, "{to}");
    assert!(
        to.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
        "{to}"
    );
    // Without a cache repository, nothing is read or written.
    let none = docker_cache_keys(&[("GANTRY_TRUSTED", "true"), ("GANTRY_BRANCH", "main")]);
    assert_eq!(none, (String::new(), String::new()));

    let text = std::fs::read_to_string(gantry_e2e::workspace().join("buildspecs/docker.yml"))
        .expect("docker.yml");
    assert_eq!(
        gantry_core::buildspec::validate(&text),
        Vec::new(),
        "gantry lint finds nothing in buildspecs/docker.yml"
    );
}
