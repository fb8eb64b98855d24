//! Every link Gantry gives out goes to the build page: a push through the
//! whole chain (moto, a loopback GitHub and chat), its statuses' and its
//! chat message's links, and the page each opens. The key that signs them
//! is made by the first link and never written to a log.

use gantry_e2e::{LocalStack, SECRET, capture_logs, corpus_file, github_headers};
use gantry_local::functions::{GitHubUrls, LocalFunctions};
use gantry_local::stack;
use serde_json::Value;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BASE: &str = "https://pages.example";
const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";

/// The chain with pages on, a loopback GitHub and chat, and a push of the
/// corpus's commit through it to its end; `key`: a page key stored first.
async fn push_through(key: Option<&str>) -> (LocalStack, MockServer, MockServer) {
    let local = LocalStack::start(&gantry_e2e::every_push_config(
        "    notifications:\n      - provider: slack\n        url-parameter: /gantry/notify/slack\n        when: always\n",
    ))
    .await;
    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/contents/buildspec.yml"))
        .respond_with(ResponseTemplate::new(200).set_body_string(BUILDSPEC))
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
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&chat)
        .await;
    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    let mut parameters = vec![(
        "/gantry/notify/slack",
        format!("{}/services/T0/B0/chat", chat.uri()),
    )];
    if let Some(key) = key {
        parameters.push((stack::names::PAGE_KEY_PARAMETER, key.to_owned()));
    }
    for (name, value) in parameters {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("seed a parameter");
    }
    let functions = LocalFunctions::new(
        &local.sdk,
        &GitHubUrls {
            contents_api: &github.uri(),
            with_token: true,
            statuses_api: &github.uri(),
            app: None,
            page_url: Some(BASE),
        },
    )
    .expect("functions");
    let webhook = stack::webhook_settings(&[])
        .expect("settings")
        .deps(&local.sdk);
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let headers = github_headers(
        "push",
        "c0000000-0000-4000-8000-0000000000aa",
        &body,
        SECRET,
    );
    assert_eq!(
        gantry_webhook::handle(&webhook, &headers, &body)
            .await
            .status,
        202
    );
    local.pump(&functions).await;
    // moto's CodeBuild ends it; its end is reported too.
    functions.progress().await;
    (local, github, chat)
}

async fn statuses(github: &MockServer) -> Vec<Value> {
    github
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().contains("/statuses/"))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn statuses_and_chat_link_each_build_to_its_page() {
    let logs = capture_logs();
    let (local, github, chat) = push_through(None).await;
    let statuses = statuses(&github).await;
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    let pages = stack::build_page_settings(BASE, &[])
        .expect("page settings")
        .deps(&local.sdk);
    for status in &statuses {
        let url = status["target_url"].as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("{BASE}/builds/gantry-dev/")),
            "{status}"
        );
        let (path, query) = url
            .trim_start_matches(BASE)
            .split_once('?')
            .expect("a signed link");
        let page = gantry_build_page::serve(
            &pages,
            "GET",
            path,
            query,
            gantry_core::events::now_ms() / 1000,
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("Codertocat/Hello-World"));
    }
    let messages = chat.received_requests().await.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    let message = String::from_utf8_lossy(&messages[0].body).into_owned();
    assert!(
        message.contains(&format!("{BASE}/builds/gantry-dev/")),
        "{message}"
    );
    assert!(!message.contains("console.aws.amazon.com"), "{message}");

    // The key was made by the first link, where the template says; it is
    // in no log line.
    let key = aws_sdk_ssm::Client::new(&local.sdk)
        .get_parameter()
        .name(stack::names::PAGE_KEY_PARAMETER)
        .with_decryption(true)
        .send()
        .await
        .expect("the key exists")
        .parameter()
        .and_then(|p| p.value().map(str::to_owned))
        .expect("a value");
    assert_eq!(key.len(), 64);
    assert!(!logs.text().contains(&key));
}

/// A key that cannot be used (an operator stored something else) must not
/// hold the statuses back: they keep their own links.
#[tokio::test(flavor = "current_thread")]
async fn a_key_that_cannot_sign_leaves_the_statuses_their_own_links() {
    let (_local, github, chat) = push_through(Some("not a key")).await;
    let statuses = statuses(&github).await;
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[1]["state"], "success");
    for status in &statuses {
        let url = status["target_url"].as_str().unwrap_or_default();
        assert!(!url.starts_with(BASE), "{status}");
        assert!(url.starts_with("https://"), "{status}");
    }
    assert_eq!(chat.received_requests().await.unwrap_or_default().len(), 1);
}
