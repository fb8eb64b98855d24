//! Gantry as a GitHub App against a loopback GitHub (wiremock): the JWT's
//! signature and claims as GitHub verifies them (with the App's public
//! key), installation tokens asked for with one repository and the least
//! permissions, cached until shortly before they expire, and neither the
//! key, the JWT nor a token in any error.

use gantry_aws::github::app::{AppKey, AppKeyError, Claims, InstallationTokens, Permissions};
use gantry_aws::github::contents::GitHubClient;
use gantry_aws::secrets::Secret;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const APP_ID: u64 = 424_242;
/// 2026-12-01T00:00:00Z.
const NOW: u64 = 1_796_083_200;
const KEY: &str = include_str!("../fixtures/test-only-app-key.pem");
const PUBLIC_KEY: &str = include_str!("../fixtures/test-only-app-key.pub.pem");
const TOKENS: &str = "/app/installations/77/access_tokens";

fn key() -> AppKey {
    AppKey::from_pem(APP_ID, &Secret::new(KEY)).expect("the test key")
}

/// The claims of `jwt` if GitHub would accept its signature: RS256 by the
/// App's key.
fn verified(jwt: &str) -> Option<Claims> {
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).ok()?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Checked by hand below, against the test's own clock.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Claims>(jwt, &key, &validation)
        .ok()
        .map(|t| t.claims)
}

/// A request whose bearer is the App's valid JWT.
struct SignedByTheApp;

impl wiremock::Match for SignedByTheApp {
    fn matches(&self, request: &Request) -> bool {
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(verified)
            .is_some_and(|c| c.iss == APP_ID.to_string())
    }
}

/// `epoch` (on NOW's day) in RFC 3339, as GitHub writes `expires_at`.
fn iso(epoch: u64) -> String {
    let secs = epoch - NOW;
    assert!(secs < 86_400, "the tests stay on NOW's day");
    format!(
        "2026-12-01T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[test]
fn the_jwt_is_rs256_by_the_apps_key_with_its_id_and_at_most_ten_minutes() {
    let jwt = key().jwt(NOW).expect("a JWT");
    let claims = verified(jwt.expose()).expect("GitHub would accept the signature");
    assert_eq!(claims.iss, APP_ID.to_string());
    assert!(claims.iat <= NOW && NOW - claims.iat <= 60, "{claims:?}");
    assert!(
        claims.exp > NOW && claims.exp - claims.iat <= 600,
        "{claims:?}"
    );
    // Another key's signature is not the App's.
    let other = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"not the key"),
    )
    .expect("an HS256 token");
    assert!(verified(&other).is_none());
}

#[test]
fn a_key_that_is_not_one_says_so_without_quoting_it() {
    let text = "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END RSA PRIVATE KEY-----\n";
    let err = AppKey::from_pem(APP_ID, &Secret::new(text)).expect_err("not a key");
    assert!(matches!(err, AppKeyError::NotAKey(_)), "{err}");
    assert!(!err.to_string().contains("bm90IGEga2V5"), "{err}");
    // The key's Debug shows the App, never the key.
    assert_eq!(
        format!("{:?}", key()),
        "AppKey { app_id: 424242, key: <redacted> }"
    );
}

#[tokio::test]
async fn a_token_is_asked_for_one_repository_and_the_least_permissions_then_cached() {
    let github = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKENS))
        .and(SignedByTheApp)
        .and(header("accept", "application/vnd.github+json"))
        .and(body_json(json!({
            "repositories": ["widgets"],
            "permissions": {"checks": "write"}
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_checks0000000000000000000000000000",
            "expires_at": iso(NOW + 3600),
            "permissions": {"checks": "write"},
            "repository_selection": "selected"
        })))
        .expect(2)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKENS))
        .and(SignedByTheApp)
        .and(body_json(json!({
            "repositories": ["widgets"],
            "permissions": {"contents": "read"}
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_contents00000000000000000000000000",
            "expires_at": iso(NOW + 3600),
        })))
        .expect(1)
        .mount(&github)
        .await;
    let tokens = InstallationTokens::new(GitHubClient::new(&github.uri()), key());
    let first = tokens
        .token(77, "octo-org/widgets", Permissions::WRITE_CHECKS, NOW)
        .await
        .expect("a token");
    assert_eq!(first.expose(), "ghs_checks0000000000000000000000000000");
    // Within its life, the same token, no request.
    let again = tokens
        .token(
            77,
            "octo-org/widgets",
            Permissions::WRITE_CHECKS,
            NOW + 1800,
        )
        .await
        .expect("the cached token");
    assert_eq!(again.expose(), first.expose());
    // Other permissions: another token, scoped to them.
    let contents = tokens
        .token(77, "octo-org/widgets", Permissions::READ_CONTENTS, NOW)
        .await
        .expect("a contents token");
    assert_eq!(contents.expose(), "ghs_contents00000000000000000000000000");
    // Close to its end, a new one is asked for (the second of two).
    tokens
        .token(
            77,
            "octo-org/widgets",
            Permissions::WRITE_CHECKS,
            NOW + 3600 - 120,
        )
        .await
        .expect("a fresh token");
}

#[tokio::test]
async fn a_refusal_names_the_repository_never_the_jwt() {
    let github = MockServer::start().await;
    // A proxy that echoes what it was sent, bearer included.
    Mock::given(method("POST"))
        .and(path(TOKENS))
        .respond_with(|request: &Request| {
            let bearer = request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": format!("Bad credentials: {bearer}")}))
        })
        .mount(&github)
        .await;
    let tokens = InstallationTokens::new(GitHubClient::new(&github.uri()), key());
    let err = tokens
        .token(77, "octo-org/widgets", Permissions::WRITE_CHECKS, NOW)
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("octo-org/widgets"), "{text}");
    assert!(text.contains("401"), "{text}");
    let jwt = key().jwt(NOW).expect("jwt");
    assert!(!text.contains(jwt.expose()), "{text}");
    assert!(!text.contains("eyJ"), "{text}");
    assert!(!err.is_transient());
}
