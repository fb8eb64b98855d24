//! Commit statuses against a loopback GitHub (wiremock): the exact request
//! for each state, the description cut to GitHub's limit, which failures are
//! retried, and a token that never shows in an error.

use gantry_aws::github::contents::{GitHubClient, GitHubError};
use gantry_aws::secrets::Secret;
use gantry_core::github::statuses::{CommitStatus, StatusState};
use gantry_e2e::GITHUB_TOKEN;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REPO: &str = "octo-org/widgets";
const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const STATUSES: &str = "/repos/octo-org/widgets/statuses/6113728f27ae82c7b1a177c8d03f9e96e0adf246";

fn token() -> Secret {
    Secret::new(GITHUB_TOKEN)
}

fn status(state: StatusState) -> CommitStatus {
    CommitStatus {
        state,
        context: "gantry/build".into(),
        description: "Build 7 running".into(),
        target_url: Some("https://console.aws.amazon.com/codesuite/codebuild/x".into()),
    }
}

/// The request GitHub must see, and nothing else.
fn expect_post(body: serde_json::Value) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(STATUSES))
        .and(header("accept", "application/vnd.github+json"))
        .and(header(
            "authorization",
            format!("Bearer {GITHUB_TOKEN}").as_str(),
        ))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(header("content-type", "application/json"))
        .and(body_json(body))
}

fn created() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"id": 1, "state": "pending"}))
}

/// Asserts the token is in neither rendering of `e`.
fn assert_no_token(e: &GitHubError) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(GITHUB_TOKEN), "token leaked: {shown}");
}

#[tokio::test(flavor = "current_thread")]
async fn each_state_is_posted_as_github_spells_it() {
    let gh = MockServer::start().await;
    let client = GitHubClient::new(&gh.uri());
    for (state, word) in [
        (StatusState::Pending, "pending"),
        (StatusState::Success, "success"),
        (StatusState::Failure, "failure"),
        (StatusState::Error, "error"),
    ] {
        let mock = expect_post(json!({
            "state": word,
            "target_url": "https://console.aws.amazon.com/codesuite/codebuild/x",
            "description": "Build 7 running",
            "context": "gantry/build",
        }))
        .respond_with(created())
        .expect(1)
        .mount_as_scoped(&gh)
        .await;
        client
            .create_status(REPO, SHA, &status(state), &token())
            .await
            .unwrap_or_else(|e| panic!("{word}: {e}"));
        drop(mock); // verifies exactly one matching request
    }
    assert_eq!(gh.received_requests().await.unwrap_or_default().len(), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_or_non_web_target_url_is_left_out() {
    let gh = MockServer::start().await;
    let client = GitHubClient::new(&gh.uri());
    expect_post(json!({
        "state": "success",
        "description": "Skipped: [skip ci]",
        "context": "gantry/build",
    }))
    .respond_with(created())
    .expect(2)
    .mount(&gh)
    .await;
    for target_url in [None, Some("javascript:alert(1)".to_owned())] {
        let status = CommitStatus {
            state: StatusState::Success,
            context: "gantry/build".into(),
            description: "Skipped:\n  [skip ci]".into(),
            target_url,
        };
        client
            .create_status(REPO, SHA, &status, &token())
            .await
            .expect("posted");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_description_is_cut_to_140_characters() {
    let gh = MockServer::start().await;
    let client = GitHubClient::new(&gh.uri());
    let long = format!("Buildspec rejected: {}", "ü".repeat(200));
    let expected = format!("Buildspec rejected: {}…", "ü".repeat(139 - 20));
    assert_eq!(expected.chars().count(), 140);
    expect_post(json!({
        "state": "failure",
        "description": expected,
        "context": "gantry/build",
    }))
    .respond_with(created())
    .expect(1)
    .mount(&gh)
    .await;
    let status = CommitStatus {
        state: StatusState::Failure,
        context: "gantry/build".into(),
        description: long,
        target_url: None,
    };
    client
        .create_status(REPO, SHA, &status, &token())
        .await
        .expect("posted");
}

#[tokio::test(flavor = "current_thread")]
async fn an_unknown_commit_is_refused_with_githubs_message() {
    let gh = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STATUSES))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": format!("No commit found for SHA: {SHA}"),
            "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
            "status": "422",
        })))
        .expect(1)
        .mount(&gh)
        .await;
    let err = GitHubClient::new(&gh.uri())
        .create_status(REPO, SHA, &status(StatusState::Pending), &token())
        .await
        .expect_err("refused");
    assert!(!err.is_transient());
    match &err {
        GitHubError::Refused {
            status, message, ..
        } => {
            assert_eq!(*status, 422);
            assert_eq!(message, &format!("No commit found for SHA: {SHA}"));
        }
        other => panic!("{other:?}"),
    }
    assert_no_token(&err);
}

#[tokio::test(flavor = "current_thread")]
async fn server_errors_and_rate_limits_are_transient() {
    let cases = [
        ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"),
        ResponseTemplate::new(429).set_body_json(json!({"message": "Too many requests"})),
        ResponseTemplate::new(403)
            .insert_header("x-ratelimit-remaining", "0")
            .set_body_json(json!({"message": "API rate limit exceeded"})),
        ResponseTemplate::new(403).set_body_json(json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        })),
    ];
    for response in cases {
        let gh = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(STATUSES))
            .respond_with(response)
            .expect(1)
            .mount(&gh)
            .await;
        let err = GitHubClient::new(&gh.uri())
            .create_status(REPO, SHA, &status(StatusState::Success), &token())
            .await
            .expect_err("transient");
        assert!(err.is_transient(), "{err:?}");
        assert_no_token(&err);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_forbidden_token_is_refused_not_retried() {
    let gh = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STATUSES))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "4999")
                .set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .mount(&gh)
        .await;
    let err = GitHubClient::new(&gh.uri())
        .create_status(REPO, SHA, &status(StatusState::Success), &token())
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, GitHubError::Refused { status: 403, message, .. } if message == "Resource not accessible by integration"),
        "{err:?}"
    );
    assert_no_token(&err);
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_github_is_transient() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let err = GitHubClient::new(&format!("http://127.0.0.1:{port}"))
        .create_status(REPO, SHA, &status(StatusState::Error), &token())
        .await
        .expect_err("unreachable");
    assert!(err.is_transient(), "{err:?}");
    assert_no_token(&err);
}

#[tokio::test(flavor = "current_thread")]
async fn a_bad_sha_or_repo_sends_nothing() {
    let gh = MockServer::start().await;
    let client = GitHubClient::new(&gh.uri());
    for (repo, sha) in [
        (REPO, "6113728"),
        (REPO, "../../../user"),
        (REPO, &*"z".repeat(40)),
        ("octo-org", SHA),
        ("octo-org/widgets/statuses", SHA),
        ("octo-org/../admin", SHA),
    ] {
        let err = client
            .create_status(repo, sha, &status(StatusState::Pending), &token())
            .await
            .expect_err("bad path");
        assert!(matches!(err, GitHubError::BadPath { .. }), "{err:?}");
        assert_no_token(&err);
    }
    assert!(gh.received_requests().await.unwrap_or_default().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn a_token_echoed_by_a_proxy_is_redacted() {
    let gh = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STATUSES))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string(format!("bad header Authorization: Bearer {GITHUB_TOKEN}")),
        )
        .mount(&gh)
        .await;
    let err = GitHubClient::new(&gh.uri())
        .create_status(REPO, SHA, &status(StatusState::Pending), &token())
        .await
        .expect_err("refused");
    assert!(
        matches!(err, GitHubError::Refused { status: 400, .. }),
        "{err:?}"
    );
    assert_no_token(&err);
}
