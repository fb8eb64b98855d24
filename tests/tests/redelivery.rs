//! Deliveries GitHub lost, redelivered by reconcile: on the moto stack
//! (the claims in its bucket), GitHub on loopback (wiremock). A failed
//! delivery is asked for again exactly once however many runs see it, a
//! delivered one and one redelivered `REDELIVER_ATTEMPTS` times already
//! are left alone, only the webhook whose URL is Gantry's is looked at,
//! App mode lists its own webhook with its JWT, GitHub down fails nothing
//! else, and no credential reaches a log line or an error.

use gantry_e2e::{GITHUB_TOKEN, LocalStack, capture_logs};
use gantry_local::stack::{self, names};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const REPO: &str = "/repos/Codertocat/Hello-World";
/// The webhook function's URL as CloudFormation gives it (a trailing
/// slash); GitHub keeps it as it was typed.
const WEBHOOK_URL: &str = "https://abc123.lambda-url.eu-west-1.on.aws/";
const APP_ID: u64 = 4242;
const PUBLIC_KEY: &str = include_str!("../fixtures/test-only-app-key.pub.pem");

/// One repository named outright (looked at) and a glob (not).
fn config() -> String {
    "version: 1\nrepositories:\n  - name: Codertocat/Hello-World\n    project: gantry-dev\n    push:\n      branches: ['**']\n  - name: other-org/*\n    project: gantry-dev\n"
        .to_owned()
}

/// `ago_min` minutes before now, as GitHub writes `delivered_at`.
fn at(ago_min: u64) -> String {
    let ms = gantry_core::events::now_ms() - ago_min * 60_000;
    let secs = i64::try_from(ms / 1000).expect("a time");
    let (y, m, d) = gantry_core::time::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

fn delivery(id: u64, guid: &str, ago_min: u64, code: u16, redelivery: bool) -> Value {
    json!({
        "id": id,
        "guid": guid,
        "delivered_at": at(ago_min),
        "redelivery": redelivery,
        "duration": 0.2,
        "status": if code == 0 { "timed out" } else { "Bad Gateway" },
        "status_code": code,
        "event": "push",
        "action": null,
        "installation_id": null,
        "repository_id": 186_853_002,
        "throttled_at": null
    })
}

/// Three events: `lost` (its one attempt failed: redelivered by attempt
/// 11), `delivered` (answered 202), `given-up` (failed, and redelivered
/// three times already, each failing).
fn listing() -> Value {
    json!([
        delivery(40, "given-up", 10, 502, true),
        delivery(31, "given-up", 20, 502, true),
        delivery(22, "given-up", 30, 0, true),
        delivery(12, "delivered", 35, 202, false),
        delivery(11, "lost", 40, 502, false),
        delivery(10, "given-up", 50, 502, false),
    ])
}

fn attempts_of(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/attempts"))
        .map(|r| r.url.path().to_owned())
        .collect()
}

/// A token-mode GitHub: hook 7 delivers to Gantry, hook 8 elsewhere.
async fn token_github(listing: Value) -> MockServer {
    let github = MockServer::start().await;
    let bearer = format!("Bearer {GITHUB_TOKEN}");
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/hooks")))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"type": "Repository", "id": 8, "name": "web", "active": true,
             "config": {"url": "https://ci.elsewhere.example/hook", "content_type": "json"}},
            {"type": "Repository", "id": 7, "name": "web", "active": true,
             "config": {"url": WEBHOOK_URL.trim_end_matches('/'), "content_type": "json"}},
        ])))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/hooks/7/deliveries")))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(listing))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(format!(
            "^{REPO}/hooks/7/deliveries/[0-9]+/attempts$"
        )))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .mount(&github)
        .await;
    github
}

fn reconcile_deps(local: &LocalStack, overrides: &[(&str, &str)]) -> gantry_reconcile::Deps {
    stack::reconcile_settings(overrides)
        .expect("settings")
        .deps(&local.sdk)
}

#[tokio::test(flavor = "current_thread")]
async fn a_lost_delivery_is_redelivered_once_by_overlapping_and_later_runs() {
    let local = LocalStack::start(&config()).await;
    let github = token_github(listing()).await;
    let env = [
        ("GITHUB_API_URL", github.uri()),
        ("WEBHOOK_URL", WEBHOOK_URL.to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Two runs at once (two cold starts, as a slow run and the next
    // schedule overlap), then a later one seeing the same listing.
    let (a, b) = (reconcile_deps(&local, &env), reconcile_deps(&local, &env));
    let (first, second) = tokio::join!(
        gantry_reconcile::reconcile(&a),
        gantry_reconcile::reconcile(&b)
    );
    let (first, second) = (first.expect("reconciled"), second.expect("reconciled"));
    let third = gantry_reconcile::reconcile(&a).await.expect("reconciled");

    let requests = github.received_requests().await.unwrap_or_default();
    assert_eq!(
        attempts_of(&requests),
        vec![format!("{REPO}/hooks/7/deliveries/11/attempts")],
        "the lost event once, by its newest attempt; never the delivered one, \
         nor one redelivered three times"
    );
    let mut redelivered: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|s| s.redelivered.clone())
        .collect();
    redelivered.sort();
    assert_eq!(redelivered, vec!["lost".to_owned()]);
    assert!(third.redelivered.is_empty());
    for s in [&first, &second, &third] {
        assert!(s.redelivery_failures.is_empty(), "{s:?}");
    }
    // Only the webhook that delivers to Gantry was listed.
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().starts_with(&format!("{REPO}/hooks/8"))),
        "another service's webhook is none of Gantry's business"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn more_redeliveries_may_be_allowed_and_zero_turns_them_off() {
    let local = LocalStack::start(&config()).await;
    let github = token_github(listing()).await;
    let uri = github.uri();
    let off = reconcile_deps(
        &local,
        &[
            ("GITHUB_API_URL", &uri),
            ("WEBHOOK_URL", WEBHOOK_URL),
            ("REDELIVER_ATTEMPTS", "0"),
        ],
    );
    let summary = gantry_reconcile::reconcile(&off).await.expect("reconciled");
    assert!(summary.redelivered.is_empty());
    assert!(
        github
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "off asks GitHub nothing"
    );
    let four = reconcile_deps(
        &local,
        &[
            ("GITHUB_API_URL", &uri),
            ("WEBHOOK_URL", WEBHOOK_URL),
            ("REDELIVER_ATTEMPTS", "4"),
        ],
    );
    let summary = gantry_reconcile::reconcile(&four)
        .await
        .expect("reconciled");
    assert_eq!(summary.redelivered, vec!["given-up", "lost"]);
    let mut attempts = attempts_of(&github.received_requests().await.unwrap_or_default());
    attempts.sort();
    assert_eq!(
        attempts,
        vec![
            format!("{REPO}/hooks/7/deliveries/11/attempts"),
            format!("{REPO}/hooks/7/deliveries/40/attempts"),
        ]
    );
}

/// `gantry dev` and the tests leave `WEBHOOK_URL` unset: token mode then
/// asks GitHub nothing about webhooks, and reconcile is as it was.
#[tokio::test(flavor = "current_thread")]
async fn without_the_webhook_url_token_mode_asks_github_nothing() {
    let local = LocalStack::start(&config()).await;
    let github = token_github(listing()).await;
    let deps = reconcile_deps(&local, &[("GITHUB_API_URL", &github.uri())]);
    let summary = gantry_reconcile::reconcile(&deps)
        .await
        .expect("reconciled");
    assert!(summary.redelivered.is_empty());
    assert!(summary.redelivery_failures.is_empty());
    assert!(
        github
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

/// GitHub down: the run still succeeds (its builds are finished either
/// way), the failure is counted, and a redelivery refused is given back
/// so the next run asks again.
#[tokio::test(flavor = "current_thread")]
async fn github_failing_fails_no_run_and_a_refused_redelivery_is_asked_again() {
    let local = LocalStack::start(&config()).await;
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/hooks")))
        .respond_with(ResponseTemplate::new(503).set_body_string("unicorns"))
        .up_to_n_times(1)
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/hooks")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": 7, "config": {"url": WEBHOOK_URL}}])),
        )
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/hooks/7/deliveries")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([delivery(11, "lost", 5, 0, false)])),
        )
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/hooks/7/deliveries/11/attempts")))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/hooks/7/deliveries/11/attempts")))
        .respond_with(ResponseTemplate::new(202))
        .mount(&github)
        .await;
    let uri = github.uri();
    let deps = reconcile_deps(
        &local,
        &[("GITHUB_API_URL", &uri), ("WEBHOOK_URL", WEBHOOK_URL)],
    );

    // Listing fails: counted, not fatal.
    let down = gantry_reconcile::reconcile(&deps)
        .await
        .expect("a redelivery failure fails no run");
    assert!(down.redelivered.is_empty());
    assert_eq!(down.redelivery_failures.len(), 1, "{down:?}");
    assert!(down.redelivery_failures[0].contains("HTTP 503"), "{down:?}");
    // The redelivery itself fails: counted, and its claim given back.
    let refused = gantry_reconcile::reconcile(&deps)
        .await
        .expect("reconciled");
    assert!(refused.redelivered.is_empty());
    assert_eq!(refused.redelivery_failures.len(), 1, "{refused:?}");
    // So the next run asks again, and GitHub takes it.
    let again = gantry_reconcile::reconcile(&deps)
        .await
        .expect("reconciled");
    assert_eq!(again.redelivered, vec!["lost"]);
    assert_eq!(
        attempts_of(&github.received_requests().await.unwrap_or_default()).len(),
        2
    );
}

/// A request whose bearer is the App's JWT, signed with its key.
struct SignedByTheApp;

fn app_claims(request: &Request) -> Option<gantry_aws::github::app::Claims> {
    let jwt = request
        .headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).ok()?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<gantry_aws::github::app::Claims>(jwt, &key, &validation)
        .ok()
        .map(|t| t.claims)
}

impl wiremock::Match for SignedByTheApp {
    fn matches(&self, request: &Request) -> bool {
        app_claims(request).is_some_and(|c| c.iss == APP_ID.to_string())
    }
}

async fn app_stack() -> LocalStack {
    let local = LocalStack::start(&config()).await;
    let pem = std::fs::read_to_string(
        gantry_e2e::workspace().join("tests/fixtures/test-only-app-key.pem"),
    )
    .expect("the test App key");
    aws_sdk_ssm::Client::new(&local.sdk)
        .put_parameter()
        .name(names::GITHUB_APP_KEY_PARAMETER)
        .value(pem)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("store the App key");
    local
}

fn app_env(uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_API_URL", uri.to_owned()),
        ("GITHUB_APP_ID", APP_ID.to_string()),
        (
            "GITHUB_APP_KEY_PARAMETER",
            names::GITHUB_APP_KEY_PARAMETER.to_owned(),
        ),
    ]
}

/// App mode: the App's own webhook, listed page by page (GitHub's cursor)
/// and redelivered with the App's JWT; no repository's webhooks, no
/// `WEBHOOK_URL` needed.
#[tokio::test(flavor = "current_thread")]
async fn app_mode_lists_the_app_s_webhook_with_its_jwt_page_by_page() {
    let local = app_stack().await;
    let github = MockServer::start().await;
    let next = format!(
        "<{}/app/hook/deliveries?per_page=100&cursor=v1_11>; rel=\"next\"",
        github.uri()
    );
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .and(wiremock::matchers::query_param("cursor", "v1_11"))
        .and(SignedByTheApp)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            delivery(11, "lost", 40, 502, false),
            delivery(10, "older", 5000, 502, false),
        ])))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .and(wiremock::matchers::query_param("per_page", "100"))
        .and(SignedByTheApp)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", next.as_str())
                .set_body_json(json!([
                    delivery(13, "delivered", 10, 200, false),
                    delivery(12, "lost", 20, 503, true),
                ])),
        )
        .with_priority(10)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/hook/deliveries/12/attempts"))
        .and(SignedByTheApp)
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&github)
        .await;
    let env = app_env(&github.uri());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let deps = reconcile_deps(&local, &env);
    let summary = gantry_reconcile::reconcile(&deps)
        .await
        .expect("reconciled");
    assert_eq!(summary.redelivered, vec!["lost"]);
    assert!(summary.redelivery_failures.is_empty(), "{summary:?}");
    let requests = github.received_requests().await.unwrap_or_default();
    let listed: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path() == "/app/hook/deliveries")
        .map(|r| r.url.query().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(listed, vec!["per_page=100", "per_page=100&cursor=v1_11"]);
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().starts_with("/repos/")),
        "App mode never lists a repository's webhooks"
    );
    assert_eq!(
        attempts_of(&requests),
        vec!["/app/hook/deliveries/12/attempts"]
    );
}

/// Neither token mode's token nor the App's JWT is ever in a log line or
/// in the run's failures, even when GitHub (or a proxy) echoes it back.
#[tokio::test(flavor = "current_thread")]
async fn no_credential_reaches_a_log_line_or_an_error() {
    let logs = capture_logs();
    // Token mode: the listing works, the redelivery is refused with the
    // token in the answer.
    let local = LocalStack::start(&config()).await;
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/hooks")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": 7, "config": {"url": WEBHOOK_URL}}])),
        )
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/hooks/7/deliveries")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([delivery(
            11,
            "echoed-token",
            5,
            502,
            false
        )])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/attempts$"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(
                json!({"message": format!("Bad credentials: Bearer {GITHUB_TOKEN}")}),
            ),
        )
        .mount(&github)
        .await;
    let uri = github.uri();
    let deps = reconcile_deps(
        &local,
        &[("GITHUB_API_URL", &uri), ("WEBHOOK_URL", WEBHOOK_URL)],
    );
    let token_run = gantry_reconcile::reconcile(&deps)
        .await
        .expect("reconciled");
    assert_eq!(token_run.redelivery_failures.len(), 1, "{token_run:?}");

    // App mode: GitHub refuses the listing, quoting the JWT it was sent.
    let app_local = app_stack().await;
    let app_github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .respond_with(|request: &Request| {
            let sent = request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            ResponseTemplate::new(401).set_body_json(
                json!({"message": format!("A JSON web token could not be decoded: {sent}")}),
            )
        })
        .mount(&app_github)
        .await;
    let env = app_env(&app_github.uri());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app_deps = reconcile_deps(&app_local, &env);
    let app_run = gantry_reconcile::reconcile(&app_deps)
        .await
        .expect("reconciled");
    assert_eq!(app_run.redelivery_failures.len(), 1, "{app_run:?}");
    let jwts: Vec<String> = app_github
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        })
        .collect();
    assert!(!jwts.is_empty(), "the App signed in");

    let text = logs.text();
    assert!(
        text.contains("echoed-token") && text.contains("redelivery failed"),
        "the failures are logged: {text}"
    );
    let failures = [token_run.redelivery_failures, app_run.redelivery_failures].concat();
    for secret in std::iter::once(GITHUB_TOKEN.to_owned()).chain(jwts) {
        assert!(!text.contains(&secret), "a credential in the logs");
        for f in &failures {
            assert!(!f.contains(&secret), "a credential in an error: {f}");
        }
    }
    assert!(
        failures.iter().any(|f| f.contains("<redacted>")),
        "{failures:?}"
    );
}
