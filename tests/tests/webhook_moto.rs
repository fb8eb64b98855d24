//! The webhook handler against the moto server over HTTP: the real SDK
//! clients, the real bucket, bus, rules and queues of the local stack.

use std::time::Duration;

use gantry_core::config::DEV_CONFIG;
use gantry_e2e::{LocalStack, SECRET, capture_logs, corpus_file, github_headers};
use gantry_webhook::handle;

const SETTLE: Duration = Duration::from_secs(2);

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).expect("reply is JSON")
}

#[tokio::test(flavor = "current_thread")]
async fn a_push_lands_on_the_bus_once_and_a_redelivery_publishes_nothing() {
    let logs = capture_logs();
    let local = LocalStack::start(DEV_CONFIG).await;
    let deps = local.deps(&[]);
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let headers = github_headers(
        "push",
        "0b5c9b7e-1111-4e0a-9d7e-4f3c2a1b0c01",
        &body,
        SECRET,
    );

    let reply = handle(&deps, &headers, &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(json(&reply.body)["outcome"], "accepted");

    let observed = local.logged(SETTLE).await;
    assert_eq!(observed.len(), 1, "{observed:?}");
    let event = &observed[0];
    assert_eq!(event.detail_type, "Build Requested");
    assert_eq!(event.rule, "EventLogRule");
    assert_eq!(
        event.detail["correlation_id"],
        "0b5c9b7e-1111-4e0a-9d7e-4f3c2a1b0c01"
    );
    assert_eq!(
        event.detail["source"]["commit_sha"],
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    );
    assert_eq!(event.detail["v"], 1);

    // GitHub's "Redeliver" keeps the delivery id.
    let again = handle(&deps, &headers, &body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(json(&again.body)["outcome"], "duplicate");
    assert!(
        local.logged(SETTLE).await.is_empty(),
        "a redelivery must publish nothing"
    );

    // No secret, no signature, no payload in the logs; one line per delivery.
    let text = logs.text();
    assert!(!text.contains(SECRET), "secret leaked into logs:\n{text}");
    let signature = headers["x-hub-signature-256"].to_str().unwrap_or_default();
    assert!(
        !text.contains(&signature[7..]),
        "signature leaked into logs:\n{text}"
    );
    assert!(
        !text.contains("Initial commit"),
        "payload content leaked into logs:\n{text}"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.contains("0b5c9b7e-1111-4e0a-9d7e-4f3c2a1b0c01"))
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["outcome"], "accepted");
    assert_eq!(
        lines[0]["delivery_id"],
        "0b5c9b7e-1111-4e0a-9d7e-4f3c2a1b0c01"
    );
    assert_eq!(lines[0]["repo"], "Codertocat/Hello-World");
    assert_eq!(lines[0]["event"], "push");
    assert_eq!(lines[1]["outcome"], "duplicate");
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_skipped_delivery_publishes_build_skipped_with_the_reason() {
    let config = "version: 1\nrepositories:\n  - name: Codertocat/*\n    project: hello\n    push:\n      branches: [main]\n";
    let local = LocalStack::start(config).await;
    let deps = local.deps(&[]);
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let headers = github_headers(
        "push",
        "0b5c9b7e-2222-4e0a-9d7e-4f3c2a1b0c02",
        &body,
        SECRET,
    );
    let reply = handle(&deps, &headers, &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(json(&reply.body)["outcome"], "skipped");
    let observed = local.logged(SETTLE).await;
    assert_eq!(observed.len(), 1, "{observed:?}");
    assert_eq!(observed[0].detail_type, "Build Skipped");
    assert_eq!(observed[0].detail["reason"]["code"], "branch");
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_secret_parameter_refuses_everything() {
    let logs = capture_logs();
    let local = LocalStack::start(DEV_CONFIG).await;
    let deps = local.deps(&[("WEBHOOK_SECRET_PARAMETER", "/gantry/no-such-secret")]);
    let body = corpus_file("07_push__with-new-branch.payload.json");
    // Correctly signed with the secret that *would* be right: still refused.
    let headers = github_headers(
        "push",
        "0b5c9b7e-3333-4e0a-9d7e-4f3c2a1b0c03",
        &body,
        SECRET,
    );
    let reply = handle(&deps, &headers, &body).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(local.logged(SETTLE).await.is_empty());
    assert!(
        logs.text()
            .contains("refusing every delivery until a webhook secret is configured"),
        "{}",
        logs.text()
    );
    local.moto.stop().await;
}

/// A cold start reads the secret and gantry.yaml together, and each cache
/// takes that answer only while it is younger than the cache's TTL. Here
/// the secret is missing at first, so the first delivery never asks for
/// the configuration; the operator then puts the secret and a new
/// gantry.yaml, and the next delivery, after the configuration's TTL,
/// applies the new one, not the cold start's.
#[tokio::test(flavor = "current_thread")]
async fn a_configuration_first_asked_for_after_its_ttl_is_read_anew() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let secret = "/gantry/webhook-secret-put-later";
    let deps = local.deps(&[
        ("WEBHOOK_SECRET_PARAMETER", secret),
        ("CONFIG_TTL_SECONDS", "1"),
    ]);
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let push = |id: &str| github_headers("push", id, &body, SECRET);
    let first = handle(&deps, &push("0b5c9b7e-6666-4e0a-9d7e-4f3c2a1b0c01"), &body).await;
    assert_eq!(first.status, 503, "{}", first.body);

    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    ssm.put_parameter()
        .name(secret)
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put the secret");
    // Pushes to main only: the corpus push's branch is skipped.
    ssm.put_parameter()
        .name(gantry_local::stack::names::CONFIG_PARAMETER)
        .value("version: 1\nrepositories:\n  - name: Codertocat/*\n    project: hello\n    push:\n      branches: [main]\n")
        .overwrite(true)
        .send()
        .await
        .expect("change gantry.yaml");
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let reply = handle(&deps, &push("0b5c9b7e-6666-4e0a-9d7e-4f3c2a1b0c02"), &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(json(&reply.body)["outcome"], "skipped", "{}", reply.body);
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_publish_answers_5xx_and_the_redelivery_goes_through() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let body = corpus_file("10_pull_request__opened.payload.json");
    let headers = github_headers(
        "pull_request",
        "0b5c9b7e-4444-4e0a-9d7e-4f3c2a1b0c04",
        &body,
        SECRET,
    );

    let broken = local.deps(&[("EVENT_BUS_NAME", "no-such-bus")]);
    let reply = handle(&broken, &headers, &body).await;
    assert!(reply.status >= 500, "{} {}", reply.status, reply.body);
    assert!(local.logged(SETTLE).await.is_empty());

    // The user fixes the bus and clicks "Redeliver": same delivery id.
    let fixed = local.deps(&[]);
    let reply = handle(&fixed, &headers, &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let observed = local.logged(SETTLE).await;
    assert_eq!(observed.len(), 1, "{observed:?}");
    assert_eq!(observed[0].detail["source"]["pull_request"]["number"], 2);
    local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_rotated_secret_is_picked_up_and_both_secrets_verify() {
    let logs = capture_logs();
    let local = LocalStack::start(DEV_CONFIG).await;
    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    ssm.put_parameter()
        .name("/gantry/webhook-secret-previous")
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put previous secret");
    ssm.put_parameter()
        .name("/gantry/webhook-secret")
        .value("the-rotated-secret")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("rotate");
    let deps = local.deps(&[(
        "WEBHOOK_SECRET_PREVIOUS_PARAMETER",
        "/gantry/webhook-secret-previous",
    )]);
    let body = corpus_file("01_ping__payload.json");
    for (secret, id) in [(SECRET, "aa01"), ("the-rotated-secret", "aa02")] {
        let reply = handle(&deps, &github_headers("ping", id, &body, secret), &body).await;
        assert_eq!(reply.status, 200, "{secret}: {}", reply.body);
    }
    let reply = handle(
        &deps,
        &github_headers("ping", "aa03", &body, "forged"),
        &body,
    )
    .await;
    assert_eq!(reply.status, 401);
    let text = logs.text();
    assert!(
        text.contains("\"aa03\""),
        "the refused delivery is logged:\n{text}"
    );
    assert!(
        !text.contains("the-rotated-secret") && !text.contains(SECRET),
        "a secret leaked into logs:\n{text}"
    );
    local.moto.stop().await;
}
