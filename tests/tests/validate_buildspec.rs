//! validate-buildspec against a loopback GitHub (wiremock) and the moto
//! server: the buildspec at the exact commit, fork pull requests on the base
//! branch's, the project default as fallback, retries on GitHub failures.

use std::time::Duration;

use gantry_aws::github::credentials::GitHubSettings;
use gantry_core::config::DEV_CONFIG;
use gantry_core::events::{
    BuildRejected, BuildRequested, BuildSource, BuildspecOrigin, BuildspecValidated, ChangedPaths,
    HeadCommit, PullRequestRef, RepositoryRef, Trigger,
};
use gantry_e2e::{GITHUB_TOKEN, LocalStack, capture_logs};
use gantry_validate_buildspec::{Outcome, Settings, handle};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const BASE_SHA: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const VALID: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";
/// Line 5: an unquoted `: ` makes the command a mapping.
const INVALID: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo: hi there\n";

fn request(fork: bool) -> BuildRequested {
    BuildRequested {
        v: 1,
        correlation_id: "c0ffee00-1111-4222-8333-444455556666".into(),
        project: "gantry-dev".into(),
        buildspec: None,
        source: BuildSource {
            trigger: if fork {
                Trigger::PullRequest
            } else {
                Trigger::Push
            },
            repository: RepositoryRef {
                full_name: "octo-org/widgets".into(),
                owner: "octo-org".into(),
                name: "widgets".into(),
                clone_url: "https://github.com/octo-org/widgets.git".into(),
                html_url: "https://github.com/octo-org/widgets".into(),
                default_branch: Some("main".into()),
                private: true,
            },
            commit_sha: SHA.into(),
            git_ref: if fork {
                "refs/pull/7/head".into()
            } else {
                "refs/heads/main".into()
            },
            branch: Some("main".into()),
            tag: None,
            pull_request: fork.then(|| PullRequestRef {
                number: 7,
                title: "Improve things".into(),
                author: "stranger".into(),
                url: "https://github.com/octo-org/widgets/pull/7".into(),
                action: "opened".into(),
                base_branch: "main".into(),
                base_sha: BASE_SHA.into(),
                head_branch: "patch-1".into(),
                head_repository: Some("stranger/widgets".into()),
                draft: false,
                approved_by: None,
                label: None,
            }),
            fork,
            pusher: None,
            sender: Some("stranger".into()),
            head_commit: Some(HeadCommit {
                message: "Improve things".into(),
                url: None,
            }),
            changed_paths: ChangedPaths::default(),
            compare_url: None,
            signed_at_ms: 0,
            received_at_ms: 0,
            installation_id: None,
            attempt: 1,
            member: None,
            run: None,
            compute: Default::default(),
        },
        paths: None,
    }
}

async fn github() -> MockServer {
    MockServer::start().await
}

fn contents(sha: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/widgets/contents/buildspec.yml"))
        .and(query_param("ref", sha))
        .and(header(
            "authorization",
            format!("Bearer {GITHUB_TOKEN}").as_str(),
        ))
        .and(header("accept", "application/vnd.github.raw+json"))
}

/// GitHub serves `body` as the buildspec at `sha`, exactly `times` times.
async fn serves(gh: &MockServer, sha: &str, body: &str, times: u64) {
    contents(sha)
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .expect(times)
        .mount(gh)
        .await;
}

/// What validate-buildspec made of `request`: it must be valid.
async fn validated(
    deps: &gantry_validate_buildspec::Deps,
    request: BuildRequested,
) -> Box<BuildspecValidated> {
    match handle(deps, request).await.expect("handled") {
        Outcome::Validated(e) => e,
        other => panic!("{other:?}"),
    }
}

/// What validate-buildspec made of `request`: it must be rejected.
async fn rejected(
    deps: &gantry_validate_buildspec::Deps,
    request: BuildRequested,
) -> Box<BuildRejected> {
    match handle(deps, request).await.expect("handled") {
        Outcome::Rejected(e) => e,
        other => panic!("{other:?}"),
    }
}

fn deps(local: &LocalStack, github: &MockServer) -> gantry_validate_buildspec::Deps {
    Settings {
        github: GitHubSettings {
            api_url: github.uri(),
            timeout: gantry_aws::github::contents::DEFAULT_TIMEOUT,
            token_parameter: Some("/gantry/github-token".into()),
            app: None,
        },
        artifact_bucket: "gantry-dev-artifacts".into(),
        event_bus: "gantry".into(),
    }
    .deps(&local.sdk)
}

#[tokio::test(flavor = "current_thread")]
async fn a_valid_buildspec_at_the_commit_is_published_inline_with_its_digest() {
    let logs = capture_logs();
    let local = LocalStack::start(DEV_CONFIG).await;
    let gh = github().await;
    serves(&gh, SHA, VALID, 1).await;

    let e = validated(&deps(&local, &gh), request(false)).await;
    assert_eq!(e.buildspec.origin, BuildspecOrigin::Repository);
    assert_eq!(e.buildspec.inline(), Some(VALID));
    assert_eq!(
        e.buildspec.location.to_string(),
        format!("octo-org/widgets:buildspec.yml@{SHA}")
    );
    assert!(e.buildspec.digest.starts_with("sha256:") && e.buildspec.digest.len() == 71);

    let observed = local.logged(Duration::from_secs(2)).await;
    let types: Vec<&str> = observed.iter().map(|o| o.detail_type.as_str()).collect();
    assert_eq!(types, ["Buildspec Validated"], "{observed:?}");
    assert!(
        !logs.text().contains(GITHUB_TOKEN),
        "the GitHub token reached the logs"
    );
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_invalid_buildspec_is_rejected_with_line_and_column() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let gh = github().await;
    contents(SHA)
        .respond_with(ResponseTemplate::new(200).set_body_string(INVALID))
        .mount(&gh)
        .await;

    let e = rejected(&deps(&local, &gh), request(false)).await;
    let first = e.diagnostics.first().expect("a diagnostic");
    assert_eq!((first.line, first.col), (5, 9), "{first:?}");
    assert!(e.reason.contains("5:9"), "{}", e.reason);
    let observed = local.logged(Duration::from_secs(2)).await;
    assert_eq!(observed.len(), 1);
    assert_eq!(observed[0].detail_type, "Build Rejected");
    assert_eq!(observed[0].detail["diagnostics"][0]["line"], 5);
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_fork_pull_request_gets_the_base_branch_buildspec_never_its_own() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let gh = github().await;
    serves(&gh, BASE_SHA, VALID, 1).await;
    serves(&gh, SHA, INVALID, 0).await;

    let e = validated(&deps(&local, &gh), request(true)).await;
    assert_eq!(e.buildspec.origin, BuildspecOrigin::BaseBranch);
    assert_eq!(
        e.source.commit_sha, SHA,
        "the build is still of the pull request's head"
    );
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_buildspec_falls_back_to_the_project_default_then_is_rejected() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let gh = github().await;
    contents(SHA)
        .respond_with(ResponseTemplate::new(404).set_body_string(r#"{"message":"Not Found"}"#))
        .mount(&gh)
        .await;
    let d = deps(&local, &gh);

    let outcome = handle(&d, request(false)).await.expect("handled");
    let Outcome::Rejected(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(e.reason.contains("no buildspec found"), "{}", e.reason);
    assert!(
        e.reason
            .contains(&format!("octo-org/widgets:buildspec.yml@{SHA}")),
        "{}",
        e.reason
    );
    assert!(
        e.reason
            .contains("s3://gantry-dev-artifacts/buildspecs/default.yml"),
        "{}",
        e.reason
    );

    let s3 = aws_sdk_s3::Client::new(&local.sdk);
    s3.put_object()
        .bucket("gantry-dev-artifacts")
        .key("buildspecs/default.yml")
        .body(VALID.as_bytes().to_vec().into())
        .send()
        .await
        .expect("upload default");
    let outcome = handle(&d, request(false)).await.expect("handled");
    let Outcome::Validated(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(e.buildspec.origin, BuildspecOrigin::ProjectDefault);
    assert_eq!(
        e.buildspec.location.to_string(),
        "s3://gantry-dev-artifacts/buildspecs/default.yml"
    );
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn github_failing_fails_the_invocation_so_eventbridge_retries() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let gh = github().await;
    contents(SHA)
        .respond_with(ResponseTemplate::new(502))
        .mount(&gh)
        .await;
    let err = handle(&deps(&local, &gh), request(false))
        .await
        .expect_err("must fail");
    assert!(err.to_string().contains("HTTP 502"), "{err}");
    assert!(
        local.logged(Duration::from_secs(1)).await.is_empty(),
        "nothing published"
    );

    let unreachable = Settings {
        github: GitHubSettings {
            api_url: "http://127.0.0.1:9".into(),
            timeout: gantry_aws::github::contents::DEFAULT_TIMEOUT,
            token_parameter: None,
            app: None,
        },
        artifact_bucket: "gantry-dev-artifacts".into(),
        event_bus: "gantry".into(),
    }
    .deps(&local.sdk);
    let err = handle(&unreachable, request(false))
        .await
        .expect_err("must fail");
    assert!(err.to_string().contains("could not connect"), "{err}");
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_large_buildspec_travels_by_s3_key() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let gh = github().await;
    let mut big = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
    while big.len() < 40 * 1024 {
        big.push_str("      - echo 'a long and careful build step that says what it does'\n");
    }
    contents(SHA)
        .respond_with(ResponseTemplate::new(200).set_body_string(big.clone()))
        .mount(&gh)
        .await;
    let e = validated(&deps(&local, &gh), request(false)).await;
    assert!(e.buildspec.inline().is_none());
    let key = e.buildspec.s3_key().expect("an S3 key").to_owned();
    let object = aws_sdk_s3::Client::new(&local.sdk)
        .get_object()
        .bucket("gantry-dev-artifacts")
        .key(&key)
        .send()
        .await
        .expect("stored");
    let stored = object.body.collect().await.expect("body").into_bytes();
    assert_eq!(stored.as_ref(), big.as_bytes());
    local.moto.stop().await;
}
