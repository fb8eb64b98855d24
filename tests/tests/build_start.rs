//! From a delivery to a running CodeBuild build, through every function of
//! the chain, against the moto server over HTTP (behind a recording proxy,
//! to see exactly what Gantry asked AWS) and a loopback GitHub.

use std::time::Duration;

use gantry_e2e::{LocalStack, RecordingProxy, SECRET, capture_logs, corpus_file, github_headers};
use gantry_local::functions::{GitHubUrls, LocalFunctions};
use gantry_local::stack::{self, names};
use gantry_local::tap::Observed;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PUSH_SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

fn config() -> String {
    gantry_e2e::every_push_config(
        "    secrets:\n      DOCKER_USERNAME: /gantry/dev/docker/username\n      DOCKER_PASSWORD: /gantry/dev/docker/password\n",
    )
}

const BUILDSPEC: &str = "\
version: 0.2
env:
  parameter-store:
    NPM_TOKEN: /gantry/dev/npm/token
  secrets-manager:
    API_TOKEN: /gantry/dev/api:token
phases:
  build:
    commands:
      - docker build -t app .
artifacts:
  files:
    - 'dist/**/*'
";

/// The secret values; none may appear in an event, a log line or a request
/// Gantry sends.
const PARAMETERS: &[(&str, &str)] = &[
    ("/gantry/dev/docker/username", "user-VALUE-7c1e"),
    ("/gantry/dev/docker/password", "pw-SECRET-VALUE-91f3"),
    ("/gantry/dev/npm/token", "npm-SECRET-VALUE-42aa"),
];

/// Secrets Manager secrets (name, JSON value); the value never leaves AWS.
const SECRETS: &[(&str, &str)] = &[("/gantry/dev/api", r#"{"token": "api-SECRET-VALUE-5d0c"}"#)];

const START_BUILD: &str = "CodeBuild_20161006.StartBuild";
const STOP_BUILD: &str = "CodeBuild_20161006.StopBuild";

struct Chain {
    local: LocalStack,
    proxy: RecordingProxy,
    functions: LocalFunctions,
    webhook: gantry_webhook::Deps,
    _github: MockServer,
}

impl Chain {
    async fn start(config: &str, parameters: &[(&str, &str)]) -> Chain {
        Chain::start_with(config, parameters, SECRETS, BUILDSPEC).await
    }

    /// The chain with these SSM parameters and Secrets Manager secrets,
    /// and GitHub serving `buildspec`.
    async fn start_with(
        config: &str,
        parameters: &[(&str, &str)],
        secrets: &[(&str, &str)],
        buildspec: &str,
    ) -> Chain {
        let local = LocalStack::start(config).await;
        let manager = aws_sdk_secretsmanager::Client::new(&local.sdk);
        for (name, value) in secrets {
            manager
                .create_secret()
                .name(*name)
                .secret_string(*value)
                .send()
                .await
                .expect("seed a secret");
        }
        let ssm = aws_sdk_ssm::Client::new(&local.sdk);
        for (name, value) in parameters {
            ssm.put_parameter()
                .name(*name)
                .value(*value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .expect("seed a parameter");
        }
        // Everything the functions send goes through the proxy.
        let proxy = RecordingProxy::start(local.moto.endpoint(), true)
            .await
            .expect("proxy");
        let sdk = stack::sdk_config(proxy.endpoint()).await;
        let github = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/repos/Codertocat/Hello-World/contents/buildspec.yml"))
            .respond_with(ResponseTemplate::new(200).set_body_string(buildspec))
            .mount(&github)
            .await;
        // The labeller of the approval tests is a maintainer: may approve.
        Mock::given(method("GET"))
            .and(path(
                "/repos/Codertocat/Hello-World/collaborators/maintainer/permission",
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"permission": "write", "role_name": "maintain"})),
            )
            .mount(&github)
            .await;
        let functions = LocalFunctions::new(
            &sdk,
            &GitHubUrls {
                contents_api: &github.uri(),
                with_token: true,
                statuses_api: &github.uri(),
                app: None,
                page_url: None,
            },
        )
        .expect("functions");
        let webhook = stack::webhook_settings(&[]).expect("settings").deps(&sdk);
        Chain {
            local,
            proxy,
            functions,
            webhook,
            _github: github,
        }
    }

    async fn deliver(&self, event: &str, delivery_id: &str, body: &[u8]) -> u16 {
        let headers = github_headers(event, delivery_id, body, SECRET);
        gantry_webhook::handle(&self.webhook, &headers, body)
            .await
            .status
    }

    /// Drives every function from its rule's queue until the bus is quiet;
    /// returns the events the event log saw, in order.
    async fn pump(&self) -> Vec<gantry_local::tap::Observed> {
        self.local.pump(&self.functions).await
    }

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

fn of_type<'a>(events: &'a [Observed], detail_type: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|o| o.detail_type == detail_type)
        .map(|o| &o.detail)
        .collect()
}

/// The StartBuild request's environment overrides as (name, value, type).
fn variables(start: &Value) -> Vec<(String, String, String)> {
    start["environmentVariablesOverride"]
        .as_array()
        .map(|vars| {
            vars.iter()
                .map(|v| {
                    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                    (s("name"), s("value"), s("type"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn variable(start: &Value, name: &str) -> Option<(String, String)> {
    variables(start)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, value, kind)| (value, kind))
}

fn assert_no_secret_value(what: &str, text: &str) {
    for (name, value) in PARAMETERS {
        assert!(!text.contains(value), "the value of {name} is in {what}");
    }
    assert!(
        !text.contains("api-SECRET-VALUE-5d0c"),
        "a secret's value is in {what}"
    );
}

fn push_body() -> Vec<u8> {
    corpus_file("07_push__with-new-branch.payload.json")
}

#[tokio::test(flavor = "current_thread")]
async fn a_push_starts_exactly_one_build_with_its_secrets_by_reference() {
    let logs = capture_logs();
    let chain = Chain::start(&config(), PARAMETERS).await;
    let delivery = "a1b2c3d4-0000-4000-8000-000000000001";
    assert_eq!(chain.deliver("push", delivery, &push_body()).await, 202);
    let events = chain.pump().await;
    assert_eq!(
        types(&events),
        vec![
            "Build Requested",
            "Buildspec Validated",
            "Secrets Resolved",
            "Build Started"
        ]
    );

    let builds = chain.builds().await;
    assert_eq!(builds.len(), 1, "{builds:?}");
    let starts = chain.proxy.calls(START_BUILD);
    assert_eq!(starts.len(), 1);
    let start = &starts[0];
    assert_eq!(start["projectName"], "gantry-dev");
    assert_eq!(start["sourceVersion"], PUSH_SHA);
    assert_eq!(start["sourceTypeOverride"], "GITHUB");
    assert_eq!(
        start["sourceLocationOverride"],
        "https://github.com/Codertocat/Hello-World.git"
    );
    assert_eq!(start["buildspecOverride"], BUILDSPEC);
    assert!(
        start["idempotencyToken"]
            .as_str()
            .is_some_and(|t| t.len() == 32),
        "{start}"
    );
    assert!(start.get("serviceRoleOverride").is_none(), "trusted build");
    assert!(start.get("cacheOverride").is_none(), "the project's cache");
    // Its artifacts: files under artifacts/<project>/<build id>/ in the
    // bucket, where the build page lists them.
    assert_eq!(
        start["artifactsOverride"],
        serde_json::json!({
            "type": "S3",
            "location": names::BUCKET,
            "path": "artifacts/gantry-dev",
            "namespaceType": "BUILD_ID",
            "name": "/",
            "packaging": "NONE",
            "overrideArtifactName": false
        })
    );
    // Secrets: names only, resolved by CodeBuild.
    for (variable_name, parameter) in [
        ("DOCKER_USERNAME", "/gantry/dev/docker/username"),
        ("DOCKER_PASSWORD", "/gantry/dev/docker/password"),
        ("NPM_TOKEN", "/gantry/dev/npm/token"),
    ] {
        assert_eq!(
            variable(start, variable_name),
            Some((parameter.to_owned(), "PARAMETER_STORE".to_owned())),
            "{variable_name}"
        );
    }
    assert_eq!(
        variable(start, "API_TOKEN"),
        Some((
            "/gantry/dev/api:token".to_owned(),
            "SECRETS_MANAGER".to_owned()
        ))
    );
    // The secret was checked by name; no function read its value.
    assert_eq!(chain.proxy.calls("secretsmanager.DescribeSecret").len(), 1);
    assert!(
        chain
            .proxy
            .calls("secretsmanager.GetSecretValue")
            .is_empty()
    );
    // Metadata: plain values, never spliced into commands.
    assert_eq!(
        variable(start, "GANTRY_COMMIT"),
        Some((PUSH_SHA.to_owned(), "PLAINTEXT".to_owned()))
    );
    assert_eq!(
        variable(start, "GANTRY_DELIVERY_ID"),
        Some((delivery.to_owned(), "PLAINTEXT".to_owned()))
    );
    assert_eq!(
        variable(start, "GANTRY_BRANCH").map(|v| v.0),
        Some("master".into())
    );
    assert_eq!(
        variable(start, "GANTRY_TRUSTED").map(|v| v.0),
        Some("true".into())
    );

    let started = of_type(&events, "Build Started")[0];
    assert_eq!(started["build_id"], builds[0].as_str());
    assert_eq!(started["correlation_id"], delivery);
    assert!(
        started["build_url"]
            .as_str()
            .is_some_and(|u| u.contains("/projects/gantry-dev/build/gantry-dev%3A")),
        "{started}"
    );

    // The existence check never asked for a value (only the functions' own
    // parameters are decrypted: the webhook secret, the GitHub token, the
    // configuration, the page key, some read together on a cold start).
    let own = [
        names::WEBHOOK_SECRET_PARAMETER,
        names::GITHUB_TOKEN_PARAMETER,
        names::CONFIG_PARAMETER,
        names::PAGE_KEY_PARAMETER,
    ];
    let checks: Vec<Value> = chain
        .proxy
        .calls("AmazonSSM.GetParameters")
        .into_iter()
        .filter(|c| {
            !c["Names"]
                .as_array()
                .is_some_and(|n| n.iter().all(|n| own.iter().any(|o| n == o)))
        })
        .collect();
    assert_eq!(checks.len(), 1, "three names, one batch: {checks:?}");
    assert_eq!(checks[0]["Names"].as_array().map(Vec::len), Some(3));
    for check in &checks {
        assert_eq!(check["WithDecryption"], false, "{check}");
    }
    // No secret value anywhere: events, requests to AWS, log lines.
    for e in &events {
        assert_no_secret_value(
            &format!("the {} event", e.detail_type),
            &e.detail.to_string(),
        );
    }
    for r in chain.proxy.requests() {
        if r.target.as_deref() != Some("AmazonSSM.GetParameters") {
            assert_no_secret_value(&format!("{} {}", r.method, r.path), &r.text());
        }
    }
    let lines: Vec<String> = logs
        .text()
        .lines()
        .filter(|l| l.contains(delivery))
        .map(str::to_owned)
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("\"outcome\":\"started\"")),
        "{lines:?}"
    );
    assert_no_secret_value("the logs", &logs.text());
}

#[tokio::test(flavor = "current_thread")]
async fn a_redelivery_or_a_replayed_event_starts_no_second_build() {
    let chain = Chain::start(&config(), PARAMETERS).await;
    let delivery = "a1b2c3d4-0000-4000-8000-000000000002";
    assert_eq!(chain.deliver("push", delivery, &push_body()).await, 202);
    let events = chain.pump().await;
    let resolved = of_type(&events, "Secrets Resolved")[0].clone();

    // GitHub's "Redeliver" keeps the delivery id.
    assert_eq!(chain.deliver("push", delivery, &push_body()).await, 200);
    assert!(chain.pump().await.is_empty());

    // EventBridge delivering the same event again (at least once).
    for _ in 0..2 {
        let replay = Observed {
            rule: "SecretsResolvedRule".into(),
            targets: vec!["StartBuildFunction".into()],
            source: gantry_core::events::SOURCE.into(),
            detail_type: "Secrets Resolved".into(),
            detail: resolved.clone(),
        };
        let line = chain.functions.dispatch(&replay).await.unwrap_or_default();
        assert!(line.contains("already started"), "{line}");
    }
    assert_eq!(chain.builds().await.len(), 1);
    assert_eq!(chain.proxy.calls(START_BUILD).len(), 1);
    assert!(chain.pump().await.is_empty(), "a replay publishes nothing");
}

/// Issue 17: `env.secrets-manager` references are checked by name before a
/// build starts, as parameters are: one that does not exist, or is named
/// outside the domain's path (another domain's, or an ARN elsewhere),
/// refuses the build naming each, and no value is ever read.
#[tokio::test(flavor = "current_thread")]
async fn a_missing_or_foreign_secrets_manager_secret_rejects_the_build_naming_it() {
    let buildspec = "\
version: 0.2
env:
  secrets-manager:
    API_TOKEN: /gantry/dev/api:token
    GONE: /gantry/dev/gone
    THEIRS: /gantry/other/db:password
    ELSEWHERE: arn:aws:secretsmanager:us-east-1:210987654321:secret:prod/db-AbCdEf:password
phases:
  build:
    commands:
      - make
";
    let chain = Chain::start_with(&config(), PARAMETERS, SECRETS, buildspec).await;
    assert_eq!(
        chain
            .deliver("push", "a1b2c3d4-0000-4000-8000-000000000017", &push_body())
            .await,
        202
    );
    let events = chain.pump().await;
    assert_eq!(
        types(&events),
        vec!["Build Requested", "Buildspec Validated", "Build Rejected"]
    );
    let rejected = of_type(&events, "Build Rejected")[0];
    assert_eq!(rejected["stage"], "secrets");
    let reason = rejected["reason"].as_str().unwrap_or_default();
    for part in [
        "3 secret references cannot be resolved",
        "THEIRS (env.secrets-manager): /gantry/other/db:password is outside /gantry/dev/",
        "ELSEWHERE (env.secrets-manager): arn:aws:secretsmanager:us-east-1:210987654321:secret:prod/db-AbCdEf:password is outside /gantry/dev/",
        "GONE (env.secrets-manager): /gantry/dev/gone does not exist",
    ] {
        assert!(reason.contains(part), "{part} not in {reason}");
    }
    assert!(!reason.contains("API_TOKEN"), "{reason}");
    // Only the two under the path were asked about, by id.
    let asked: Vec<String> = chain
        .proxy
        .calls("secretsmanager.DescribeSecret")
        .iter()
        .map(|c| c["SecretId"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(asked, ["/gantry/dev/api", "/gantry/dev/gone"]);
    assert!(
        chain
            .proxy
            .calls("secretsmanager.GetSecretValue")
            .is_empty()
    );
    assert!(chain.proxy.calls(START_BUILD).is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_parameter_rejects_the_build_naming_it_and_its_variable() {
    let config = format!("{}      SIGNING_KEY: /elsewhere/signing-key\n", config());
    // The Docker password was never created.
    let chain = Chain::start(&config, &[PARAMETERS[0], PARAMETERS[2]]).await;
    assert_eq!(
        chain
            .deliver("push", "a1b2c3d4-0000-4000-8000-000000000003", &push_body())
            .await,
        202
    );
    let events = chain.pump().await;
    assert_eq!(
        types(&events),
        vec!["Build Requested", "Buildspec Validated", "Build Rejected"]
    );
    let rejected = of_type(&events, "Build Rejected")[0];
    assert_eq!(rejected["stage"], "secrets");
    assert_eq!(
        rejected["secrets"],
        json!([
            {"variable": "SIGNING_KEY", "parameter": "/elsewhere/signing-key", "from": "config", "problem": "outside_prefix"},
            {"variable": "DOCKER_PASSWORD", "parameter": "/gantry/dev/docker/password", "from": "config", "problem": "missing"},
        ])
    );
    let reason = rejected["reason"].as_str().unwrap_or_default();
    assert!(
        reason
            .contains("DOCKER_PASSWORD (gantry.yaml): /gantry/dev/docker/password does not exist"),
        "{reason}"
    );
    assert!(chain.proxy.calls(START_BUILD).is_empty());
    assert!(chain.builds().await.is_empty());
}

/// The corpus pull request's `synchronize` delivery, at `head_sha`.
fn pull_request(head_sha: &str) -> Value {
    let mut pr: Value =
        serde_json::from_slice(&corpus_file("13_pull_request__synchronize.payload.json"))
            .expect("corpus JSON");
    pr["pull_request"]["head"]["sha"] = json!(head_sha);
    pr
}

fn pull_request_body(head_sha: &str) -> Vec<u8> {
    serde_json::to_vec(&pull_request(head_sha)).expect("JSON")
}

/// The corpus pull request, opened from a fork, at `head_sha`.
fn fork_pull_request(action: &str, head_sha: &str, label: Option<&str>) -> Vec<u8> {
    let mut pr = pull_request(head_sha);
    pr["action"] = json!(action);
    pr["pull_request"]["head"]["repo"]["full_name"] = json!("stranger/Hello-World");
    if let Some(label) = label {
        pr["label"] = json!({ "name": label });
        pr["sender"]["login"] = json!("maintainer");
    }
    serde_json::to_vec(&pr).expect("JSON")
}

const FORK_HEAD: &str = "f00dfacef00dfacef00dfacef00dfacef00dface";

#[tokio::test(flavor = "current_thread")]
async fn a_fork_pull_request_builds_without_secret_references_under_the_untrusted_role() {
    let chain = Chain::start(&config(), PARAMETERS).await;
    let body = fork_pull_request("synchronize", FORK_HEAD, None);
    assert_eq!(
        chain
            .deliver(
                "pull_request",
                "a1b2c3d4-0000-4000-8000-000000000004",
                &body
            )
            .await,
        202
    );
    let events = chain.pump().await;
    assert_eq!(
        types(&events),
        vec![
            "Build Requested",
            "Buildspec Validated",
            "Secrets Resolved",
            "Build Started"
        ]
    );
    let resolved = of_type(&events, "Secrets Resolved")[0];
    assert_eq!(resolved["trusted"], false);
    assert!(resolved.get("secrets").is_none(), "{resolved}");
    assert!(
        resolved["withheld"]
            .as_str()
            .is_some_and(|w| w.contains("stranger/Hello-World") && w.contains("without secrets")),
        "{resolved}"
    );
    let start = &chain.proxy.calls(START_BUILD)[0];
    assert_eq!(start["sourceVersion"], FORK_HEAD);
    assert_eq!(start["serviceRoleOverride"], names::UNTRUSTED_ROLE);
    // The project's cache (CodeBuild's local caches on a shared host, or
    // S3) is not the fork's to fill for the next trusted build.
    assert_eq!(start["cacheOverride"]["type"], "NO_CACHE", "{start}");
    // Nor does it write artifacts into the bucket (the project has none).
    assert!(start.get("artifactsOverride").is_none(), "{start}");
    assert!(
        variables(start)
            .iter()
            .all(|(_, _, kind)| kind == "PLAINTEXT"),
        "{start}"
    );
    assert_eq!(
        variable(start, "GANTRY_TRUSTED").map(|v| v.0),
        Some("false".into())
    );
    // The buildspec's own reference is gone from what CodeBuild runs.
    let spec = start["buildspecOverride"].as_str().unwrap_or_default();
    assert!(!spec.contains("/gantry/dev/npm/token"), "{spec}");
    assert!(!spec.contains("/gantry/dev/api"), "{spec}");
    assert!(spec.contains("docker build -t app ."), "{spec}");
}

#[tokio::test(flavor = "current_thread")]
async fn under_the_approval_policy_a_fork_waits_for_the_label_then_builds_with_secrets() {
    let config = format!("{}    forks: approval\n", config());
    let chain = Chain::start(&config, PARAMETERS).await;
    let body = fork_pull_request("synchronize", FORK_HEAD, None);
    chain
        .deliver(
            "pull_request",
            "a1b2c3d4-0000-4000-8000-000000000005",
            &body,
        )
        .await;
    let events = chain.pump().await;
    assert_eq!(
        types(&events),
        vec!["Build Requested", "Buildspec Validated", "Build Held"]
    );
    assert_eq!(of_type(&events, "Build Held")[0]["code"], "approval");
    assert!(chain.proxy.calls(START_BUILD).is_empty());

    // Another label approves nothing.
    let other = fork_pull_request("labeled", FORK_HEAD, Some("bug"));
    assert_eq!(
        chain
            .deliver(
                "pull_request",
                "a1b2c3d4-0000-4000-8000-000000000006",
                &other
            )
            .await,
        202
    );
    assert!(chain.pump().await.is_empty());

    let approve = fork_pull_request("labeled", FORK_HEAD, Some("gantry:approved"));
    chain
        .deliver(
            "pull_request",
            "a1b2c3d4-0000-4000-8000-000000000007",
            &approve,
        )
        .await;
    let events = chain.pump().await;
    assert_eq!(
        types(&events).last(),
        Some(&"Build Started"),
        "{:?}",
        types(&events)
    );
    assert_eq!(
        of_type(&events, "Build Requested")[0]["source"]["pull_request"]["approved_by"],
        "maintainer"
    );
    let start = &chain.proxy.calls(START_BUILD)[0];
    assert!(start.get("serviceRoleOverride").is_none());
    assert_eq!(
        variable(start, "DOCKER_PASSWORD"),
        Some((
            "/gantry/dev/docker/password".into(),
            "PARAMETER_STORE".into()
        ))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_second_commit_on_a_pull_request_stops_the_first_build() {
    let chain = Chain::start(&config(), PARAMETERS).await;
    let first_sha = "1111111111111111111111111111111111111111";
    let second_sha = "2222222222222222222222222222222222222222";
    let pr = pull_request_body;
    chain
        .deliver(
            "pull_request",
            "a1b2c3d4-0000-4000-8000-000000000008",
            &pr(first_sha),
        )
        .await;
    let first = chain.pump().await;
    let first_build = of_type(&first, "Build Started")[0]["build_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(chain.proxy.calls(STOP_BUILD).is_empty());
    let first_resolved = of_type(&first, "Secrets Resolved")[0].clone();

    chain
        .deliver(
            "pull_request",
            "a1b2c3d4-0000-4000-8000-000000000009",
            &pr(second_sha),
        )
        .await;
    let second = chain.pump().await;
    assert_eq!(
        types(&second),
        vec![
            "Build Requested",
            "Buildspec Validated",
            "Secrets Resolved",
            "Build Started",
            "Build Superseded"
        ]
    );
    let stops = chain.proxy.calls(STOP_BUILD);
    assert_eq!(stops, vec![json!({ "id": first_build })]);
    let notice = of_type(&second, "Build Superseded")[0];
    assert_eq!(notice["build_id"], first_build.as_str());
    assert_eq!(notice["source"]["commit_sha"], first_sha);
    assert_eq!(notice["superseded_by"]["commit_sha"], second_sha);
    assert_eq!(chain.builds().await.len(), 2);

    // The first commit's event arriving again under a new delivery id, late:
    // the newer commit wins, and nothing starts.
    let mut late = first_resolved;
    late["correlation_id"] = json!("a1b2c3d4-0000-4000-8000-00000000000a");
    let line = chain
        .functions
        .dispatch(&Observed {
            rule: "SecretsResolvedRule".into(),
            targets: vec!["StartBuildFunction".into()],
            source: gantry_core::events::SOURCE.into(),
            detail_type: "Secrets Resolved".into(),
            detail: late,
        })
        .await
        .unwrap_or_default();
    assert!(line.contains("superseded by 2222222"), "{line}");
    assert_eq!(chain.proxy.calls(START_BUILD).len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn cancel_superseded_false_lets_both_builds_run() {
    let config = format!("{}    cancel-superseded: false\n", config());
    let chain = Chain::start(&config, PARAMETERS).await;
    for (i, sha) in [
        "3333333333333333333333333333333333333333",
        "4444444444444444444444444444444444444444",
    ]
    .iter()
    .enumerate()
    {
        let body = pull_request_body(sha);
        chain
            .deliver(
                "pull_request",
                &format!("a1b2c3d4-0000-4000-8000-00000000010{i}"),
                &body,
            )
            .await;
        chain.pump().await;
    }
    assert_eq!(chain.proxy.calls(START_BUILD).len(), 2);
    assert!(chain.proxy.calls(STOP_BUILD).is_empty());
}

/// CodeBuild at its limit, as it answers: HTTP 400 with the JSON error.
fn at_limit() -> ResponseTemplate {
    ResponseTemplate::new(400)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(
            json!({
                "__type": "AccountLimitExceededException",
                "message": "Cannot have more than 1 builds in queue for the account"
            })
            .to_string(),
        )
}

/// start-build with CodeBuild played by a loopback stub (moto never refuses
/// for capacity) and S3 and EventBridge by moto.
async fn start_build_against(
    local: &LocalStack,
    codebuild: &MockServer,
    attempts: u32,
) -> gantry_start_build::Deps {
    let settings = stack::start_build_settings(&[
        ("START_RETRY_ATTEMPTS", &attempts.to_string()),
        ("START_RETRY_BASE_MS", "10"),
    ])
    .expect("settings");
    let mut deps = settings.deps(&local.sdk);
    let stub = stack::sdk_config(&codebuild.uri()).await;
    deps.codebuild = aws_sdk_codebuild::Client::new(&stub);
    deps
}

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
            "commit_sha": PUSH_SHA, "git_ref": "refs/heads/master", "branch": "master", "fork": false,
            "changed_paths": {"paths": [], "truncated": true}, "received_at_ms": 1
        },
        "buildspec": {"origin": "repository", "location": "Codertocat/Hello-World:buildspec.yml@6113728",
            "digest": "sha256:00", "inline": BUILDSPEC},
        "trusted": true,
        "cancel_superseded": true
    }))
    .expect("a Secrets Resolved event")
}

#[tokio::test(flavor = "current_thread")]
async fn codebuild_at_its_limit_holds_the_build_as_queued_and_retries_until_it_starts() {
    let local = LocalStack::start(&config()).await;
    let codebuild = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::header("x-amz-target", START_BUILD))
        .respond_with(at_limit())
        .up_to_n_times(2)
        .mount(&codebuild)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::header("x-amz-target", START_BUILD))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string(
                    json!({"build": {
                        "id": "gantry-dev:7f1c",
                        "arn": "arn:aws:codebuild:us-east-1:123456789012:build/gantry-dev:7f1c",
                        "buildNumber": 12,
                        "startTime": 1.7e9,
                        "buildStatus": "IN_PROGRESS"
                    }})
                    .to_string(),
                ),
        )
        .mount(&codebuild)
        .await;
    let deps = start_build_against(&local, &codebuild, 4).await;
    let outcome = gantry_start_build::handle(&deps, resolved_event("cap-0001"))
        .await
        .expect("handled");
    let gantry_start_build::Outcome::Started(started) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(started.build_id, "gantry-dev:7f1c");
    assert_eq!(started.build_number, Some(12));

    let requests = codebuild.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 3, "two refusals, then the start");
    let tokens: Vec<Value> = requests
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap_or_default()["idempotencyToken"].clone()
        })
        .collect();
    assert!(
        tokens.iter().all(|t| *t == tokens[0] && t.is_string()),
        "{tokens:?}"
    );

    let logged = local.logged(Duration::from_secs(1)).await;
    assert_eq!(types(&logged), vec!["Build Held", "Build Started"]);
    let held = of_type(&logged, "Build Held")[0];
    assert_eq!(held["code"], "queued");
}

#[tokio::test(flavor = "current_thread")]
async fn codebuild_at_its_limit_for_every_retry_rejects_the_build_with_the_reason() {
    let local = LocalStack::start(&config()).await;
    let codebuild = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(at_limit())
        .expect(3)
        .mount(&codebuild)
        .await;
    let deps = start_build_against(&local, &codebuild, 3).await;
    let outcome = gantry_start_build::handle(&deps, resolved_event("cap-0002"))
        .await
        .expect("handled");
    let gantry_start_build::Outcome::Rejected(rejected) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        rejected.reason.contains("after 3 attempts")
            && rejected
                .reason
                .contains("Cannot have more than 1 builds in queue"),
        "{}",
        rejected.reason
    );
    let logged = local.logged(Duration::from_secs(1)).await;
    assert_eq!(types(&logged), vec!["Build Held", "Build Rejected"]);
    assert_eq!(of_type(&logged, "Build Rejected")[0]["stage"], "start");
    // The refusal is final: a replay does not start over.
    let again = gantry_start_build::handle(&deps, resolved_event("cap-0002"))
        .await
        .expect("handled");
    assert_eq!(
        again,
        gantry_start_build::Outcome::Duplicate { build_id: None }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_start_that_fails_for_another_reason_is_retried_by_eventbridge_and_then_starts_once() {
    let local = LocalStack::start(&config()).await;
    let codebuild = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .mount(&codebuild)
        .await;
    let deps = start_build_against(&local, &codebuild, 3).await;
    let err = gantry_start_build::handle(&deps, resolved_event("cap-0003"))
        .await
        .expect_err("the invocation fails, so EventBridge retries it");
    assert!(err.to_string().contains("StartBuild failed"), "{err}");
    assert!(local.logged(Duration::from_secs(1)).await.is_empty());

    // The claim was released: EventBridge's retry, against moto, starts it.
    let deps = stack::start_build_settings(&[])
        .expect("settings")
        .deps(&local.sdk);
    let outcome = gantry_start_build::handle(&deps, resolved_event("cap-0003"))
        .await
        .expect("handled");
    assert!(
        matches!(outcome, gantry_start_build::Outcome::Started(_)),
        "{outcome:?}"
    );
}

/// Issue 17: a repository's compute type, image and timeout are StartBuild
/// overrides; a named build's own win over its repository's; a value
/// beyond the operator's lists rejects the build before CodeBuild is
/// asked, with the list in the reason (a gantry.yaml edit cannot put a
/// miner on 2XLARGE machines for 36 hours).
#[tokio::test(flavor = "current_thread")]
async fn a_repositorys_compute_is_overridden_and_only_within_the_operators_lists() {
    let config = gantry_e2e::every_push_config(
        "    compute-type: BUILD_GENERAL1_MEDIUM\n    image: aws/codebuild/amazonlinux-x86_64-standard:5.0\n    timeout: 90\n",
    );
    let chain = Chain::start(&config, PARAMETERS).await;
    let delivery = "a1b2c3d4-0000-4000-8000-0000000000c1";
    assert_eq!(chain.deliver("push", delivery, &push_body()).await, 202);
    let events = chain.pump().await;
    assert_eq!(types(&events).last(), Some(&"Build Started"), "{events:?}");
    let start = &chain.proxy.calls(START_BUILD)[0];
    assert_eq!(start["computeTypeOverride"], "BUILD_GENERAL1_MEDIUM");
    assert_eq!(
        start["imageOverride"],
        "aws/codebuild/amazonlinux-x86_64-standard:5.0"
    );
    assert_eq!(start["timeoutInMinutesOverride"], 90);
    chain.local.moto.stop().await;

    // A named build asks for more than the operator allows: rejected at
    // start, nothing started; its sibling within the lists starts.
    let config = gantry_e2e::every_push_config(
        "    compute-type: BUILD_GENERAL1_MEDIUM\n    builds:\n      - name: heavy\n        compute-type: BUILD_GENERAL1_2XLARGE\n      - name: light\n",
    );
    let chain = Chain::start(&config, PARAMETERS).await;
    let delivery = "a1b2c3d4-0000-4000-8000-0000000000c2";
    assert_eq!(chain.deliver("push", delivery, &push_body()).await, 202);
    let events = chain.pump().await;
    let rejected = of_type(&events, "Build Rejected");
    assert_eq!(rejected.len(), 1, "{events:?}");
    assert_eq!(rejected[0]["stage"], "start");
    assert_eq!(rejected[0]["source"]["member"]["name"], "heavy");
    let reason = rejected[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("compute type BUILD_GENERAL1_2XLARGE, which this deployment does not allow (AllowedComputeTypes: BUILD_GENERAL1_SMALL, BUILD_GENERAL1_MEDIUM, BUILD_GENERAL1_LARGE)"),
        "{reason}"
    );
    let starts = chain.proxy.calls(START_BUILD);
    assert_eq!(starts.len(), 1, "only the light build starts");
    assert_eq!(
        starts[0]["computeTypeOverride"], "BUILD_GENERAL1_MEDIUM",
        "the repository's compute, which the named build did not override"
    );
    chain.local.moto.stop().await;
}
