//! Chat notifications against loopback webhooks: the exact request each
//! provider gets, retries on 5xx and 429, no retry on a refusal, and the
//! webhook URL's token nowhere in an error or a log line.

use std::time::{Duration, Instant};

use gantry_aws::chat::{Delivery, Notifier, NotifyError};
use gantry_aws::secrets::Secret;
use gantry_core::notify::{Provider, picture, render};
use gantry_e2e::capture_logs;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Every webhook URL in this file carries this, and no output may.
const TOKEN: &str = "s3cr3t-T0KEN";

/// A provider, its webhook's path, a query parameter it carries, and how
/// the service answers a delivery.
type Case = (
    Provider,
    String,
    Option<(&'static str, String)>,
    ResponseTemplate,
);

fn fast() -> Notifier {
    Notifier::with_retry(4, Duration::from_millis(10), Duration::from_secs(5))
}

fn url(server: &MockServer, path_and_query: &str) -> Secret {
    Secret::new(format!("{}{path_and_query}", server.uri()))
}

fn assert_no_token(e: &NotifyError) {
    let shown = format!("{e} | {e:?}");
    assert!(!shown.contains(TOKEN), "the token leaked: {shown}");
}

/// Each provider's webhook gets one POST of `application/json` whose body
/// is exactly the rendered payload, at the webhook's path.
#[tokio::test(flavor = "current_thread")]
async fn each_provider_receives_exactly_the_rendered_payload() {
    let message = picture::example();
    let cases: [Case; 5] = [
        (
            Provider::Slack,
            format!("/services/T000/B000/{TOKEN}"),
            None,
            ResponseTemplate::new(200).set_body_string("ok"),
        ),
        (
            Provider::Teams,
            "/workflows/0a1b/triggers/manual/paths/invoke".into(),
            Some(("sig", TOKEN.to_owned())),
            ResponseTemplate::new(202),
        ),
        (
            Provider::Discord,
            format!("/api/webhooks/123456/{TOKEN}"),
            None,
            ResponseTemplate::new(204),
        ),
        (
            Provider::GoogleChat,
            "/v1/spaces/AAAA/messages".into(),
            Some(("token", TOKEN.to_owned())),
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"name": "spaces/AAAA/messages/1"})),
        ),
        (
            Provider::Generic,
            format!("/hooks/{TOKEN}"),
            None,
            ResponseTemplate::new(200),
        ),
    ];
    for (provider, hook_path, query, response) in cases {
        let server = MockServer::start().await;
        let mut mock = Mock::given(method("POST"))
            .and(path(hook_path.as_str()))
            .and(header("content-type", "application/json"))
            .and(body_json(render(provider, &message)));
        let mut full = hook_path.clone();
        if let Some((name, value)) = &query {
            mock = mock.and(query_param(*name, value.as_str()));
            full = format!("{full}?{name}={value}");
        }
        mock.respond_with(response.clone())
            .expect(1)
            .named(provider.as_str())
            .mount(&server)
            .await;

        let delivery = fast()
            .send(provider, &url(&server, &full), &message)
            .await
            .unwrap_or_else(|e| panic!("{provider}: {e}"));
        assert_eq!(delivery.attempts, 1, "{provider}");
        assert!((200..300).contains(&delivery.status), "{provider}");

        let requests = server.received_requests().await.unwrap();
        let ua = requests[0]
            .headers
            .get("user-agent")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(ua.starts_with("gantry/"), "{ua}");
        server.verify().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_500_then_200_delivers_exactly_one_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let delivery = fast()
        .send(
            Provider::Slack,
            &url(&server, &format!("/services/T/B/{TOKEN}")),
            &picture::example(),
        )
        .await
        .unwrap();
    assert_eq!(
        delivery,
        Delivery {
            attempts: 2,
            status: 200
        }
    );
    server.verify().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_429_waits_for_retry_after_then_delivers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let delivery = fast()
        .send(
            Provider::Discord,
            &url(&server, &format!("/api/webhooks/1/{TOKEN}")),
            &picture::example(),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        delivery,
        Delivery {
            attempts: 2,
            status: 204
        }
    );
    server.verify().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_retry_after_is_capped_by_the_maximum_wait() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let notifier = Notifier::with_retry(2, Duration::from_millis(10), Duration::from_millis(200));
    let started = Instant::now();
    let delivery = notifier
        .send(
            Provider::Generic,
            &url(&server, &format!("/{TOKEN}")),
            &picture::example(),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(delivery.attempts, 2);
}

/// Refusals, exhausted retries and unreachable hosts each give their error
/// at once or after the configured attempts, and none shows the token —
/// not in Display, not in Debug, not in the logs.
#[tokio::test(flavor = "current_thread")]
async fn errors_and_logs_never_show_the_webhook_token() {
    let logs = capture_logs();
    let mut message = picture::example();
    message.correlation_id = "notify-errors-e2e".into();

    // 404, a deleted webhook, whose body even echoes the path: refused at once.
    let server = MockServer::start().await;
    let hook = format!("/api/webhooks/9/{TOKEN}");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string(format!(
            "{{\"message\": \"Unknown Webhook {hook}\", \"code\": 10015}}"
        )))
        .expect(1)
        .mount(&server)
        .await;
    let e = fast()
        .send(Provider::Discord, &url(&server, &hook), &message)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, NotifyError::Refused { provider: Provider::Discord, status: 404, body_excerpt } if body_excerpt.contains("Unknown Webhook")),
        "{e:?}"
    );
    assert!(!e.is_transient());
    assert_no_token(&e);
    server.verify().await;

    // 400, an invalid payload: refused at once too.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_payload"))
        .expect(1)
        .mount(&server)
        .await;
    let e = fast()
        .send(
            Provider::Slack,
            &url(&server, &format!("/services/T/B/{TOKEN}")),
            &message,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, NotifyError::Refused { status: 400, .. }),
        "{e:?}"
    );
    assert_no_token(&e);

    // 503 every time: Unavailable after exactly the configured attempts.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let notifier = Notifier::with_retry(3, Duration::from_millis(5), Duration::from_millis(20));
    let e = notifier
        .send(
            Provider::Teams,
            &url(&server, &format!("/workflows/x/invoke?sig={TOKEN}")),
            &message,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, NotifyError::Unavailable { provider: Provider::Teams, attempts: 3, reason } if reason == "HTTP 503"),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_no_token(&e);
    server.verify().await;

    // Connection refused: a port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = Secret::new(format!(
        "http://127.0.0.1:{port}/v1/spaces/A/messages?key=k&token={TOKEN}"
    ));
    let e = notifier
        .send(Provider::GoogleChat, &refused, &message)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, NotifyError::Unavailable { attempts: 3, reason, .. } if reason.starts_with("could not connect")),
        "{e:?}"
    );
    assert_no_token(&e);

    // An invalid URL is its own error, without the URL.
    let e = notifier
        .send(
            Provider::Slack,
            &Secret::new(format!("hooks.slack.com/{TOKEN}")),
            &message,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, NotifyError::InvalidUrl { .. }));
    assert_no_token(&e);

    let text = logs.text();
    assert!(!text.contains(TOKEN), "the token leaked into the logs");
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("notify-errors-e2e"))
        .collect();
    assert!(
        ours.iter().any(|l| l.contains("retrying")) && ours.iter().any(|l| l.contains("refused")),
        "the capture saw the sends: {ours:#?}"
    );
}
