//! `template.yaml`: valid CloudFormation, its rules route the events of
//! the contract where they are meant to go, and its build roles grant what
//! their builds need and nothing a fork's build could abuse.

use std::process::Command;
use std::time::Duration;

use gantry_e2e::{LocalStack, workspace};
use gantry_shared::config::DEV_CONFIG;
use gantry_shared::events::{DETAIL_TYPES, SOURCE};
use gantry_shared::yaml::{self, Node, Value};

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
    ("EventLogRule", DETAIL_TYPES),
    ("BuildRequestedRule", &["Build Requested"]),
    ("BuildspecValidatedRule", &["Buildspec Validated"]),
    ("SecretsResolvedRule", &["Secrets Resolved"]),
    (
        "BuildEventsRule",
        &[
            "Build Skipped",
            "Build Rejected",
            "Build Held",
            "Build Started",
            "Build Superseded",
        ],
    ),
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
    for &detail_type in DETAIL_TYPES {
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

fn template() -> Node {
    let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
    let limits = yaml::Limits {
        max_bytes: 4 * 1024 * 1024,
        ..yaml::Limits::default()
    };
    yaml::parse(&text, limits)
        .expect("template.yaml parses")
        .expect("template.yaml is not empty")
}

fn resource<'a>(template: &'a Node, id: &str) -> &'a Node {
    template
        .get("Resources")
        .and_then(|r| r.get(id))
        .unwrap_or_else(|| panic!("template has no resource {id}"))
}

/// Every IAM statement under `node`, in either branch of an `!If`.
fn statements(node: &Node) -> Vec<&Node> {
    let mut found = Vec::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match &n.value {
            Value::Map(entries) => {
                if n.get("Effect").is_some() && n.get("Action").is_some() {
                    found.push(n);
                }
                stack.extend(entries.iter().map(|(_, v)| v));
            }
            Value::Seq(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    found
}

/// A scalar or a list of scalars.
fn strings(node: &Node) -> Vec<&str> {
    match &node.value {
        Value::Seq(items) => items.iter().filter_map(Node::as_str).collect(),
        _ => node.as_str().into_iter().collect(),
    }
}

fn allowed_actions(node: &Node) -> Vec<String> {
    statements(node)
        .into_iter()
        .filter(|s| s.get("Effect").and_then(Node::as_str) == Some("Allow"))
        .flat_map(|s| s.get("Action").map(strings).unwrap_or_default())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// `!GetAtt A.B`, `!GetAtt [A, B]` or `Fn::GetAtt: …` as `A.B`.
fn get_att(node: &Node) -> Option<String> {
    let tagged = node.tag.as_deref().or(match &node.value {
        Value::Scalar { tag, .. } => tag.as_deref(),
        _ => None,
    });
    let inner = if tagged == Some("GetAtt") {
        node
    } else {
        node.get("Fn::GetAtt")?
    };
    match &inner.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        Value::Seq(items) => Some(
            items
                .iter()
                .filter_map(Node::as_str)
                .collect::<Vec<_>>()
                .join("."),
        ),
        _ => None,
    }
}

#[test]
fn build_roles_are_least_privilege() {
    let template = template();

    // docker build needs the daemon.
    let project = resource(&template, "BuildProject");
    let privileged = project
        .get("Properties")
        .and_then(|p| p.get("Environment"))
        .and_then(|e| e.get("PrivilegedMode"))
        .map(Node::to_json);
    assert_eq!(
        privileged,
        Some(serde_json::Value::Bool(true)),
        "BuildProject must run privileged"
    );

    // A fork's build: no secrets, no registry, nothing broad; and no policy
    // attached to its role from elsewhere.
    let untrusted_role = resource(&template, "UntrustedBuildRole");
    assert!(
        untrusted_role
            .get("Properties")
            .and_then(|p| p.get("ManagedPolicyArns"))
            .is_none(),
        "UntrustedBuildRole takes no managed policies"
    );
    if let Some(Node {
        value: Value::Map(resources),
        ..
    }) = template.get("Resources")
    {
        for (id, r) in resources {
            let kind = r.get("Type").and_then(Node::as_str).unwrap_or_default();
            if kind == "AWS::IAM::Policy" || kind == "AWS::IAM::ManagedPolicy" {
                let roles = r.get("Properties").and_then(|p| p.get("Roles"));
                let names: Vec<&str> = roles.map(strings).unwrap_or_default();
                assert!(
                    !names.contains(&"UntrustedBuildRole"),
                    "{:?} attaches a policy to UntrustedBuildRole",
                    id.as_str()
                );
            }
        }
    }
    let untrusted = untrusted_role
        .get("Properties")
        .and_then(|p| p.get("Policies"))
        .map(allowed_actions)
        .unwrap_or_default();
    assert!(!untrusted.is_empty(), "UntrustedBuildRole grants nothing?");
    for action in &untrusted {
        assert!(
            !["ssm:", "ecr:", "kms:", "secretsmanager:", "iam:", "sts:"]
                .iter()
                .any(|p| action.starts_with(p))
                && !action.contains('*'),
            "UntrustedBuildRole must not allow {action}"
        );
    }

    // The trusted role reads secrets only under the prefix.
    let trusted = resource(&template, "BuildRole");
    for statement in statements(trusted) {
        let actions = statement.get("Action").map(strings).unwrap_or_default();
        let allows = statement.get("Effect").and_then(Node::as_str) == Some("Allow");
        if allows && actions.iter().any(|a| a.starts_with("ssm:")) {
            assert_eq!(
                actions,
                ["ssm:GetParameters"],
                "BuildRole: only GetParameters"
            );
            let resource = statement.get("Resource").and_then(Node::as_str);
            assert!(
                resource.is_some_and(|r| r.ends_with(":parameter${SecretsPathPrefix}*")),
                "BuildRole reads SSM outside SecretsPathPrefix: {resource:?}"
            );
        }
    }

    // start-build may hand CodeBuild the untrusted role and nothing else.
    let start_build = resource(&template, "StartBuildFunction");
    let mut passes = 0;
    for statement in statements(start_build) {
        let actions = statement.get("Action").map(strings).unwrap_or_default();
        let passes_roles = actions.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            a == "iam:passrole" || a == "iam:*" || a == "*"
        });
        if !passes_roles || statement.get("Effect").and_then(Node::as_str) != Some("Allow") {
            continue;
        }
        passes += 1;
        // A list of resources, or one; `*` or a `!Sub` reads as `None`.
        let resources: Vec<Option<String>> = match statement.get("Resource") {
            Some(Node {
                value: Value::Seq(items),
                tag: None,
                ..
            }) => items.iter().map(get_att).collect(),
            other => vec![other.and_then(get_att)],
        };
        assert_eq!(
            resources,
            [Some("UntrustedBuildRole.Arn".to_owned())],
            "StartBuildFunction may pass only UntrustedBuildRole"
        );
        let service = statement
            .get("Condition")
            .and_then(|c| c.get("StringEquals"))
            .and_then(|c| c.get("iam:PassedToService"))
            .and_then(Node::as_str);
        assert_eq!(service, Some("codebuild.amazonaws.com"));
    }
    assert_eq!(passes, 1, "StartBuildFunction needs iam:PassRole once");
}

/// `CodeBuildEventsRule` invokes build-events for a build's final state
/// only: not for IN_PROGRESS nor the phase changes (about ten a build),
/// which it would receive and report nothing of. The rule's pattern, as
/// deployed for the corpus events' projects, routes the corpus events on
/// moto's EventBridge to a queue; what arrives is what build-events would get.
#[tokio::test(flavor = "current_thread")]
async fn codebuild_rule_passes_final_states_of_the_project_only() {
    let template = template();
    let mut pattern = resource(&template, "CodeBuildEventsRule")
        .get("Properties")
        .and_then(|p| p.get("EventPattern"))
        .expect("EventPattern")
        .to_json();
    // `!Ref ProjectName`, as deployed for the corpus events' projects.
    pattern["detail"]["project-name"] = serde_json::json!(["TestProject", "my-sample-project"]);
    let local = LocalStack::start(DEV_CONFIG).await;
    let events = aws_sdk_eventbridge::Client::new(&local.sdk);
    let sqs = aws_sdk_sqs::Client::new(&local.sdk);
    let queue = sqs
        .create_queue()
        .queue_name("codebuild-rule-check")
        .send()
        .await
        .expect("create queue");
    let queue_url = queue.queue_url().expect("queue url").to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .expect("queue arn");
    events
        .put_rule()
        .name("codebuild-rule-check")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("put rule");
    events
        .put_targets()
        .rule("codebuild-rule-check")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("put targets");
    let cases = [
        (
            "35_recorded_codebuild_state_change_SUCCEEDED.json",
            None,
            true,
        ),
        ("07_go_codebuild-state-change.json", None, true),
        (
            "35_recorded_codebuild_state_change_SUCCEEDED.json",
            Some("another"),
            false,
        ),
        (
            "34_recorded_codebuild_state_change_IN_PROGRESS.json",
            None,
            false,
        ),
        ("02_rust_example-codebuild-phase-change.json", None, false),
        ("10_doc_codebuild_phase_change.json", None, false),
    ];
    for (i, (name, project, _)) in cases.iter().enumerate() {
        let path = gantry_e2e::corpus().join("events").join(name);
        let text = std::fs::read_to_string(&path).expect("corpus event");
        let event: serde_json::Value = serde_json::from_str(&text).expect("corpus JSON");
        let mut detail = event["detail"].clone();
        if let Some(project) = project {
            detail["project-name"] = serde_json::json!(project);
        }
        detail["case"] = serde_json::json!(i);
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(event["source"].as_str().expect("source"))
            .detail_type(event["detail-type"].as_str().expect("detail-type"))
            .detail(detail.to_string())
            .build();
        let out = events
            .put_events()
            .entries(entry)
            .send()
            .await
            .expect("put events");
        assert_eq!(out.failed_entry_count(), 0);
    }
    let mut routed = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if received.messages().is_empty() {
            break;
        }
        for m in received.messages() {
            let body: serde_json::Value =
                serde_json::from_str(m.body().unwrap_or_default()).expect("event JSON");
            routed.push(body["detail"]["case"].as_u64().expect("case") as usize);
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    routed.sort_unstable();
    let expected: Vec<usize> = (0..cases.len()).filter(|&i| cases[i].2).collect();
    assert_eq!(routed, expected, "cases routed to build-events: {cases:?}");
    local.moto.stop().await;
}

/// The functions Lambda invokes asynchronously: the targets of the
/// template's EventBridge rules and the functions with a `Schedule` event.
fn async_functions(template: &Node) -> Vec<String> {
    let Some(Value::Map(resources)) = template.get("Resources").map(|r| &r.value) else {
        panic!("template has no Resources")
    };
    let mut found = Vec::new();
    for (key, node) in resources {
        let id = key.as_str().unwrap_or_default();
        let kind = node.get("Type").and_then(Node::as_str);
        let properties = node.get("Properties");
        if kind == Some("AWS::Events::Rule")
            && let Some(Value::Seq(targets)) =
                properties.and_then(|p| p.get("Targets")).map(|t| &t.value)
        {
            for target in targets {
                if let Some(arn) = target.get("Arn").and_then(get_att)
                    && let Some(function) = arn.strip_suffix(".Arn")
                    && resource(template, function)
                        .get("Type")
                        .and_then(Node::as_str)
                        == Some("AWS::Serverless::Function")
                {
                    found.push(function.to_owned());
                }
            }
        }
        if kind == Some("AWS::Serverless::Function")
            && let Some(Value::Map(events)) =
                properties.and_then(|p| p.get("Events")).map(|e| &e.value)
            && events.iter().any(|(_, e)| {
                matches!(
                    e.get("Type").and_then(Node::as_str),
                    Some("Schedule" | "ScheduleV2" | "EventBridgeRule" | "CloudWatchEvent")
                )
            })
        {
            found.push(id.to_owned());
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_async_function_sends_what_it_failed_on_to_a_queue() {
    let template = template();
    let functions = async_functions(&template);
    for expected in [
        "ValidateBuildspecFunction",
        "InjectSecretsFunction",
        "StartBuildFunction",
        "BuildEventsFunction",
        "ReconcileFunction",
    ] {
        assert!(
            functions.iter().any(|f| f == expected),
            "{expected} should be invoked asynchronously: {functions:?}"
        );
    }
    for function in &functions {
        let properties = resource(&template, function)
            .get("Properties")
            .unwrap_or_else(|| panic!("{function} has no Properties"));
        // The role must be SAM's (built from Policies) for SAM to grant
        // sqs:SendMessage on the destination.
        assert!(
            properties.get("Role").is_none() && properties.get("Policies").is_some(),
            "{function}: SAM grants the destination only to a role it generates"
        );
        let config = properties
            .get("EventInvokeConfig")
            .unwrap_or_else(|| panic!("{function}: no EventInvokeConfig: a failed invocation would be dropped after Lambda's retries"));
        let number = |key: &str| {
            config
                .get(key)
                .map(Node::to_json)
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        };
        assert_eq!(number("MaximumRetryAttempts"), Some(2), "{function}");
        let age = number("MaximumEventAgeInSeconds").unwrap_or(0);
        assert!((60..=21_600).contains(&age), "{function}: event age {age}");
        let on_failure = config
            .get("DestinationConfig")
            .and_then(|d| d.get("OnFailure"))
            .unwrap_or_else(|| panic!("{function}: no OnFailure destination"));
        assert_eq!(
            on_failure.get("Type").and_then(Node::as_str),
            Some("SQS"),
            "{function}"
        );
        let destination = on_failure
            .get("Destination")
            .and_then(get_att)
            .unwrap_or_else(|| panic!("{function}: the destination is not a !GetAtt"));
        let queue = destination
            .strip_suffix(".Arn")
            .unwrap_or_else(|| panic!("{function}: {destination} is not an ARN"));
        assert_eq!(
            resource(&template, queue)
                .get("Type")
                .and_then(Node::as_str),
            Some("AWS::SQS::Queue"),
            "{function}: {queue}"
        );
    }
}
