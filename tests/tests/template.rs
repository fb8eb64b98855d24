//! `template.yaml`: valid CloudFormation, and its rules route the events of
//! the contract where they are meant to go.

use std::process::Command;
use std::time::Duration;

use gantry_e2e::{LocalStack, workspace};
use gantry_shared::config::DEV_CONFIG;
use gantry_shared::events::SOURCE;

#[test]
fn template_passes_cfn_lint() {
    let out = Command::new("cfn-lint")
        .arg(workspace().join("template.yaml"))
        .output()
        .expect("cfn-lint must be installed (pip install cfn-lint)");
    assert!(
        out.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// For each rule of the template: the detail types it must receive.
const ROUTES: &[(&str, &[&str])] = &[
    (
        "EventLogRule",
        &[
            "Build Requested",
            "Build Skipped",
            "Buildspec Validated",
            "Build Rejected",
        ],
    ),
    ("BuildRequestedRule", &["Build Requested"]),
];

#[tokio::test(flavor = "current_thread")]
async fn rule_patterns_match_the_events_they_route() {
    let local = LocalStack::start(DEV_CONFIG).await;
    let rule_ids: Vec<&str> = local
        .stack
        .rules
        .iter()
        .map(|r| r.rule.logical_id.as_str())
        .collect();
    for (rule, _) in ROUTES {
        assert!(
            rule_ids.contains(rule),
            "template has no rule {rule}; it has {rule_ids:?}"
        );
    }
    let events = aws_sdk_eventbridge::Client::new(&local.sdk);
    let all_types = [
        "Build Requested",
        "Build Skipped",
        "Buildspec Validated",
        "Build Rejected",
    ];
    for detail_type in all_types {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name("gantry")
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(r#"{"v":1,"correlation_id":"route-check"}"#)
            .build();
        let out = events
            .put_events()
            .entries(entry)
            .send()
            .await
            .expect("put events");
        assert_eq!(out.failed_entry_count(), 0);
    }
    // An event from elsewhere on the bus reaches no Gantry rule.
    let foreign = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name("gantry")
        .source("someone.else")
        .detail_type("Build Requested")
        .detail("{}")
        .build();
    events
        .put_events()
        .entries(foreign)
        .send()
        .await
        .expect("put events");

    let observed = local.observed(Duration::from_secs(2)).await;
    for (rule, expected) in ROUTES {
        let mut got: Vec<&str> = observed
            .iter()
            .filter(|o| o.rule == *rule)
            .map(|o| o.detail_type.as_str())
            .collect();
        got.sort_unstable();
        let mut want = expected.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "rule {rule}");
    }
    local.moto.stop().await;
}
