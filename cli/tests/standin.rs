//! `gantry dev`'s GitHub stand-in in GitHub App mode, driven over loopback
//! by Gantry's own GitHub client: the App's JWT exchanged for an
//! installation token, the token used as far as it was given and no
//! further.

use gantry_aws::github::app::{AppKey, InstallationTokens, Permissions};
use gantry_aws::github::checks::CheckRun;
use gantry_aws::github::contents::{Fetched, GitHubClient, GitHubError};
use gantry_aws::secrets::Secret;
use gantry_cli::sink::{self, SinkOptions};
use gantry_cli::standin::{AppStandIn, NOT_ACCESSIBLE};
use gantry_core::github::checks::{CheckState, CheckStatus, Conclusion};
use gantry_core::github::statuses::{CommitStatus, StatusState};

const KEY: &str = include_str!("../../tests/fixtures/test-only-app-key.pem");
const APP: u64 = 4242;
const INSTALLATION: u64 = 77;
const REPO: &str = "octo-org/widgets";
const SHA: &str = "9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070";

/// The sink in App mode for App [`APP`] with [`KEY`]; its URL.
async fn stand_in() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let app = AppStandIn::from_pem(APP, KEY).expect("the fixture key");
    tokio::spawn(sink::serve(
        listener,
        SinkOptions {
            repo: None,
            app: Some(app),
        },
    ));
    url
}

/// Gantry's installation tokens, as the functions make them, for App
/// `app` with `key`, asking GitHub at `api`.
fn tokens(api: &str, app: u64, key: &str) -> InstallationTokens {
    let key = AppKey::from_pem(app, &Secret::new(key)).expect("a key");
    InstallationTokens::new(GitHubClient::new(api), key)
}

/// A private key of nobody's App.
fn other_key() -> String {
    use aws_lc_rs::encoding::AsDer;
    let pair = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("a new key");
    let der = pair.as_der().expect("its PKCS#8");
    pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()))
}

fn now() -> u64 {
    gantry_cli::standin::now()
}

fn run(state: CheckState, title: &'static str) -> CheckRun<'static> {
    CheckRun {
        name: "gantry/widgets",
        head_sha: SHA,
        state,
        external_id: "build-1",
        details_url: Some("http://127.0.0.1:9000/logs/widgets-1.log"),
        title,
        summary: "The build of widgets",
        text: None,
        annotations: &[],
        actions: &[],
    }
}

const QUEUED: CheckState = CheckState {
    status: CheckStatus::Queued,
    conclusion: None,
};
const FAILED: CheckState = CheckState {
    status: CheckStatus::Completed,
    conclusion: Some(Conclusion::Failure),
};

/// The status and GitHub's message of a refusal.
fn refused(result: Result<impl std::fmt::Debug, GitHubError>) -> (u16, String) {
    match result {
        Err(GitHubError::Refused {
            status, message, ..
        }) => (status, message),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_token_issued_for_the_apps_jwt_creates_and_updates_a_check_run() {
    let api = stand_in().await;
    let tokens = tokens(&api, APP, KEY);
    let token = tokens
        .token(INSTALLATION, REPO, Permissions::WRITE_CHECKS, now())
        .await
        .expect("an installation token");
    assert!(token.expose().starts_with("ghs_"));
    let github = GitHubClient::new(&api);
    let id = github
        .create_check_run(REPO, &run(QUEUED, "Queued"), &token)
        .await
        .expect("created");
    assert_eq!(id, 1);
    github
        .update_check_run(REPO, id, &run(FAILED, "2 tests failed"), &token)
        .await
        .expect("updated");
    let second = github
        .create_check_run(REPO, &run(QUEUED, "Queued"), &token)
        .await
        .expect("created");
    assert_eq!(second, 2);
    // A run the stand-in never made is not found.
    let (status, _) = refused(
        github
            .update_check_run(REPO, 99, &run(FAILED, "x"), &token)
            .await,
    );
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_jwt_signed_with_another_key_is_refused() {
    let api = stand_in().await;
    let (status, message) = refused(
        tokens(&api, APP, &other_key())
            .token(INSTALLATION, REPO, Permissions::WRITE_CHECKS, now())
            .await,
    );
    assert_eq!(status, 401);
    assert!(message.contains("signature"), "{message}");
}

#[tokio::test]
async fn a_jwt_of_another_app_is_refused() {
    let api = stand_in().await;
    let (status, message) = refused(
        tokens(&api, APP + 1, KEY)
            .token(INSTALLATION, REPO, Permissions::WRITE_CHECKS, now())
            .await,
    );
    assert_eq!(status, 401);
    assert!(message.contains("'iss'"), "{message}");
}

#[tokio::test]
async fn an_expired_jwt_is_refused() {
    let api = stand_in().await;
    // Signed as if an hour ago: it expired 51 minutes ago.
    let (status, message) = refused(
        tokens(&api, APP, KEY)
            .token(INSTALLATION, REPO, Permissions::WRITE_CHECKS, now() - 3600)
            .await,
    );
    assert_eq!(status, 401);
    assert!(message.contains("'exp'"), "{message}");
}

#[tokio::test]
async fn a_token_for_one_repository_is_refused_on_another() {
    let api = stand_in().await;
    let token = tokens(&api, APP, KEY)
        .token(INSTALLATION, REPO, Permissions::WRITE_CHECKS, now())
        .await
        .expect("an installation token");
    let (status, message) = refused(
        GitHubClient::new(&api)
            .create_check_run("octo-org/gadgets", &run(QUEUED, "Queued"), &token)
            .await,
    );
    assert_eq!((status, message.as_str()), (403, NOT_ACCESSIBLE));
}

#[tokio::test]
async fn a_token_to_read_contents_cannot_create_a_check_run() {
    let api = stand_in().await;
    let token = tokens(&api, APP, KEY)
        .token(INSTALLATION, REPO, Permissions::READ_CONTENTS, now())
        .await
        .expect("an installation token");
    let github = GitHubClient::new(&api);
    let (status, message) = refused(
        github
            .create_check_run(REPO, &run(QUEUED, "Queued"), &token)
            .await,
    );
    assert_eq!((status, message.as_str()), (403, NOT_ACCESSIBLE));
    // What it was given it may do: the stand-in has no repository here,
    // so the file is not found, rather than refused.
    let fetched = github
        .file_at(REPO, "buildspec.yml", SHA, Some(&token))
        .await
        .expect("read");
    assert_eq!(fetched, Fetched::NotFound);
}

#[tokio::test]
async fn statuses_contents_and_permissions_each_need_their_own_token() {
    let api = stand_in().await;
    let tokens = tokens(&api, APP, KEY);
    let github = GitHubClient::new(&api);
    let statuses = tokens
        .token(INSTALLATION, REPO, Permissions::WRITE_STATUSES, now())
        .await
        .expect("a token for statuses");
    let status = CommitStatus {
        state: StatusState::Pending,
        target_url: None,
        description: "Build queued".into(),
        context: "gantry/widgets".into(),
    };
    github
        .create_status(REPO, SHA, &status, &statuses)
        .await
        .expect("posted");
    let (code, _) = refused(
        github
            .file_at(REPO, "buildspec.yml", SHA, Some(&statuses))
            .await,
    );
    assert_eq!(code, 403);
    let checks = tokens
        .token(INSTALLATION, REPO, Permissions::WRITE_CHECKS, now())
        .await
        .expect("a token for checks");
    let (code, _) = refused(github.create_status(REPO, SHA, &status, &checks).await);
    assert_eq!(code, 403);
    // Any token of the repository reads a collaborator's permission.
    let metadata = tokens
        .token(INSTALLATION, REPO, Permissions::READ_METADATA, now())
        .await
        .expect("a token for metadata");
    let permission = github
        .permission(REPO, "octocat", &metadata)
        .await
        .expect("a permission");
    assert_eq!(permission.permission, "write");
    // And no token is no access.
    let (code, _) = refused(github.file_at(REPO, "buildspec.yml", SHA, None).await);
    assert_eq!(code, 401);
    let (code, message) = refused(
        github
            .create_status(REPO, SHA, &status, &Secret::new("ghs_made-up"))
            .await,
    );
    assert_eq!((code, message.as_str()), (401, "Bad credentials"));
}

#[test]
fn gantry_dev_takes_the_app_id_and_key_together_and_names_a_key_that_is_not_one() {
    let gantry = || std::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
    let alone = gantry()
        .args(["dev", "--github-app-id", "4242"])
        .output()
        .expect("run gantry dev");
    assert!(!alone.status.success());
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert!(stderr.contains("--github-app-key"), "{stderr}");

    // The public half is not the key: refused before anything starts.
    let public = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/test-only-app-key.pub.pem"
    );
    let refused = gantry()
        .args(["dev", "--github-app-id", "4242", "--github-app-key", public])
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run gantry dev");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("test-only-app-key.pub.pem"), "{stderr}");
    assert!(
        stderr.contains("not the GitHub App's private key"),
        "{stderr}"
    );
    let body = std::fs::read_to_string(public).expect("the fixture");
    let line = body.lines().nth(1).expect("a line of the key");
    assert!(!stderr.contains(line), "{stderr}");
    assert!(String::from_utf8_lossy(&refused.stdout).is_empty());
}
