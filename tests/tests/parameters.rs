//! The existence check inject-secrets makes: GetParameters without
//! decryption, ten names a call, against the moto server and, for IAM's
//! refusals (which moto does not enforce), a loopback SSM.

use gantry_aws::parameters;
use gantry_core::config::DEV_CONFIG;
use gantry_e2e::{LocalStack, RecordingProxy};
use gantry_local::stack;
use serde_json::json;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "current_thread")]
async fn twelve_names_are_checked_in_two_calls_and_the_missing_ones_named() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    let names: Vec<String> = (0..12).map(|i| format!("/gantry/p{i:02}")).collect();
    for name in names
        .iter()
        .filter(|n| !n.ends_with("03") && !n.ends_with("11"))
    {
        ssm.put_parameter()
            .name(name)
            .value("a-value-never-read")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("seed");
    }
    let proxy = RecordingProxy::start(local.moto.endpoint(), true)
        .await
        .expect("proxy");
    let client = aws_sdk_ssm::Client::new(&stack::sdk_config(proxy.endpoint()).await);
    let mut asked = names.clone();
    asked.push(names[0].clone()); // a name twice is asked once
    let checked = parameters::check(&client, &asked).await.expect("checked");
    let mut missing = checked.missing.clone();
    missing.sort();
    assert_eq!(missing, vec!["/gantry/p03", "/gantry/p11"]);
    assert!(checked.forbidden.is_empty());
    let calls = proxy.calls("AmazonSSM.GetParameters");
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c["Names"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![10, 2]);
    assert!(calls.iter().all(|c| c["WithDecryption"] == false));
}

#[tokio::test(flavor = "current_thread")]
async fn a_refused_batch_is_asked_again_name_by_name_to_find_the_forbidden_one() {
    let ssm = MockServer::start().await;
    let denied = ResponseTemplate::new(400)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(
            json!({"__type": "AccessDeniedException", "message": "User is not authorized to perform: ssm:GetParameters"})
                .to_string(),
        );
    Mock::given(method("POST"))
        .and(body_string_contains("/other/forbidden"))
        .respond_with(denied)
        .with_priority(1)
        .mount(&ssm)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("/gantry/absent"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string(
                    json!({"Parameters": [], "InvalidParameters": ["/gantry/absent"]}).to_string(),
                ),
        )
        .with_priority(2)
        .mount(&ssm)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string(json!({"Parameters": [], "InvalidParameters": []}).to_string()),
        )
        .with_priority(3)
        .mount(&ssm)
        .await;
    let client = aws_sdk_ssm::Client::new(&stack::sdk_config(&ssm.uri()).await);
    let names = ["/gantry/ok", "/other/forbidden", "/gantry/absent"].map(String::from);
    let checked = parameters::check(&client, &names).await.expect("checked");
    assert_eq!(checked.forbidden, vec!["/other/forbidden"]);
    assert_eq!(checked.missing, vec!["/gantry/absent"]);
    // One batch, refused; then one call per name.
    assert_eq!(ssm.received_requests().await.map(|r| r.len()), Some(4));
}
