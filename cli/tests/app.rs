//! `gantry app create` as an operator runs it, with the test as the browser
//! and GitHub: the loopback page posts the manifest (only the permissions
//! and events Gantry uses) to the organisation's settings; a callback with
//! another state is refused; GitHub's code is converted, and the App's id,
//! private key and webhook secret land in SSM (moto), the secrets as
//! SecureStrings and never printed; the install link is printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use gantry_local::moto::Moto;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;

const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEnotreallyakeybutsecret0000\n-----END RSA PRIVATE KEY-----\n";
const WEBHOOK_SECRET: &str = "whsec-0f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the attribute `name="…"` after `from` in `html`.
fn attribute(html: &str, name: &str) -> String {
    let start = html.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
    let end = html[start..].find('"').expect("closing quote") + start;
    unescape(&html[start..end])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manifest_flow_registers_the_app_and_stores_its_credentials_in_ssm() {
    let moto = Moto::start().await.expect("moto");
    let github = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/app-manifests/c0de-123/conversions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 9876,
            "slug": "gantry-octo",
            "html_url": "https://github.example.com/apps/gantry-octo",
            "pem": PEM,
            "webhook_secret": WEBHOOK_SECRET,
            "client_id": "Iv1.abc",
            "client_secret": "not-used",
        })))
        .expect(1)
        .mount(&github)
        .await;

    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "app",
            "create",
            "--webhook-url",
            "https://hook.example.com/",
        ])
        .args(["--name", "gantry-octo", "--org", "octo-org"])
        .args(["--github-url", "https://github.example.com"])
        .args(["--api-url", &github.uri()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry app create");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("a line");
    let page_url = format!("http://127.0.0.1:{port}/");
    assert!(first.contains(&page_url), "{first}");

    let html = reqwest::get(&page_url)
        .await
        .expect("the page")
        .text()
        .await
        .expect("text");
    let action = attribute(&html, "action");
    let (target, state) = action.split_once("?state=").expect("a state");
    assert_eq!(
        target,
        "https://github.example.com/organizations/octo-org/settings/apps/new"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&attribute(&html, "value")).expect("the manifest is JSON");
    assert_eq!(manifest["name"], "gantry-octo");
    assert_eq!(
        manifest["hook_attributes"]["url"],
        "https://hook.example.com/"
    );
    assert_eq!(
        manifest["redirect_url"],
        format!("http://127.0.0.1:{port}/callback")
    );
    assert_eq!(manifest["default_permissions"]["checks"], "write");
    assert_eq!(manifest["default_permissions"]["contents"], "read");
    assert_eq!(
        manifest["default_events"],
        json!(["push", "pull_request", "check_run", "check_suite"])
    );

    // A code with another state (a page this run did not make) is refused.
    let forged = reqwest::get(format!(
        "http://127.0.0.1:{port}/callback?code=c0de-123&state=not-ours"
    ))
    .await
    .expect("answer");
    assert_eq!(forged.status().as_u16(), 400);

    // GitHub sends the browser back.
    let back = reqwest::get(format!(
        "http://127.0.0.1:{port}/callback?code=c0de-123&state={state}"
    ))
    .await
    .expect("answer");
    assert_eq!(back.status().as_u16(), 200);
    let done = back.text().await.expect("text");
    assert!(
        done.contains("https://github.example.com/apps/gantry-octo/installations/new"),
        "{done}"
    );

    let status = child.wait().expect("exit");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("stdout");
    assert!(status.success(), "{first}{rest}");
    assert!(
        rest.contains("Install it: https://github.example.com/apps/gantry-octo/installations/new"),
        "{rest}"
    );
    // The next step, with the names the credentials were stored under.
    assert!(
        rest.contains("sam deploy --parameter-overrides GitHubAppId=")
            && rest.contains("GitHubAppKeyParameterName=/gantry/github-app/private-key")
            && rest.contains("WebhookSecretParameterName=/gantry/github-app/webhook-secret"),
        "{rest}"
    );
    assert!(
        !rest.contains("MIIE") && !rest.contains(WEBHOOK_SECRET),
        "{rest}"
    );

    let sdk = gantry_aws::sdk_loader()
        .endpoint_url(moto.endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let read = |name: &'static str| {
        let ssm = ssm.clone();
        async move {
            let p = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .expect(name);
            let p = p.parameter().expect("a parameter").clone();
            (
                p.value().unwrap_or_default().to_owned(),
                p.r#type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
            )
        }
    };
    assert_eq!(
        read("/gantry/github-app/id").await,
        ("9876".into(), "String".into())
    );
    assert_eq!(
        read("/gantry/github-app/private-key").await,
        (PEM.into(), "SecureString".into())
    );
    assert_eq!(
        read("/gantry/github-app/webhook-secret").await,
        (WEBHOOK_SECRET.into(), "SecureString".into())
    );
    moto.stop().await;
}
