//! `template.yaml`: valid CloudFormation, its rules route the events of
//! the contract where they are meant to go, and its build roles grant what
//! their builds need and nothing a fork's build could abuse.

use std::process::Command;
use std::time::Duration;

use gantry_core::config::DEV_CONFIG;
use gantry_core::events::{DETAIL_TYPES, SOURCE};
use gantry_core::yaml::{self, Node, Value};
use gantry_e2e::cfn::{ACCOUNT, BUCKET, Deployed, REGION};
use gantry_e2e::{LocalStack, workspace};
use gantry_local::tap::{Tap, TapSpec};

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
            "Build Requested",
            "Check Run Requested",
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

/// `sam build --language-extensions` (SAM CLI 1.160 and later) expands the
/// template's `Fn::ForEach` loops itself and refuses a loop or a loop
/// identifier that has a parameter's name ("loop name 'TrustDomains'
/// conflicts with parameter name"), so the deploy build a user runs would
/// stop before building anything.
#[test]
fn no_foreach_loop_or_identifier_is_named_as_a_parameter() {
    let template = template();
    let parameters: Vec<&str> = match template.get("Parameters").map(|p| &p.value) {
        Some(Value::Map(entries)) => entries.iter().filter_map(|(k, _)| k.as_str()).collect(),
        _ => Vec::new(),
    };
    let mut loops = 0;
    for section in ["Resources", "Conditions", "Outputs"] {
        let Some(Value::Map(entries)) = template.get(section).map(|s| &s.value) else {
            continue;
        };
        for (key, body) in entries {
            let Some(name) = key.as_str().and_then(|k| k.strip_prefix("Fn::ForEach::")) else {
                continue;
            };
            loops += 1;
            assert!(
                !parameters.contains(&name),
                "{section}: loop {name} has a parameter's name"
            );
            let identifier = match &body.value {
                Value::Seq(items) => items.first().and_then(Node::as_str),
                _ => None,
            };
            let identifier = identifier.unwrap_or_else(|| panic!("loop {name} has no identifier"));
            assert!(
                !parameters.contains(&identifier),
                "{section}: loop {name}'s identifier {identifier} has a parameter's name"
            );
        }
    }
    assert!(
        loops >= 2,
        "the template's trust-domain loops were not found"
    );
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

fn deployed(domains: &[&str]) -> Deployed {
    let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
    Deployed::from_template(&text, &[("TrustDomains", serde_json::json!(domains))])
}

fn ssm(name: &str) -> String {
    format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}")
}

fn ecr(repository: &str) -> String {
    format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{repository}")
}

/// What a build could do to a repository's secrets or images.
const SECRET_READS: &[&str] = &[
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
];
const IMAGE_WRITES: &[&str] = &[
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:BatchDeleteImage",
];

/// Issue 11, item 2: every trusted build ran under one role that could
/// read every repository's secrets and push every image. Each trust domain
/// now has its own; evaluated here as deployed with two domains.
#[test]
fn no_trust_domain_reaches_another_domains_secrets_or_images() {
    let d = deployed(&["alpha", "beta"]);
    let roles = d.of_type("AWS::IAM::Role");
    for (domain, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let role = format!("BuildRole{domain}");
        assert!(roles.contains(&role), "no {role} in {roles:?}");
        // Its own: readable and writable.
        let own_secret = ssm(&format!("/gantry/{domain}/docker/password"));
        assert!(d.allows(&role, "ssm:GetParameters", &own_secret), "{role}");
        assert!(
            d.allows(
                &role,
                "ecr:PutImage",
                &ecr(&format!("gantry-builds/{domain}"))
            ),
            "{role}"
        );
        // Another domain's: neither, by any action.
        for action in SECRET_READS {
            for name in [
                format!("/gantry/{other}/docker/password"),
                format!("/gantry/{other}"),
                "/gantry/webhook-secret".to_owned(),
                "/gantry/webhook-secrets/186853002".to_owned(),
                "/gantry/github-token".to_owned(),
                "/gantry/config".to_owned(),
                "/gantry/notify/slack".to_owned(),
            ] {
                assert!(
                    !d.allows(&role, action, &ssm(&name)),
                    "{role} may {action} {name}"
                );
            }
        }
        for action in IMAGE_WRITES {
            for repository in [format!("gantry-builds/{other}"), "gantry-builds".to_owned()] {
                assert!(
                    !d.allows(&role, action, &ecr(&repository)),
                    "{role} may {action} on {repository}"
                );
            }
        }
        // Its project runs under it, privileged (docker build needs the
        // daemon), and pushes to its own repository.
        let project = &d.resources[&format!("BuildProject{domain}")]["Properties"];
        assert_eq!(project["Name"], format!("gantry-{domain}"));
        assert_eq!(
            project["ServiceRole"],
            format!("arn:aws:iam::{ACCOUNT}:role/{role}")
        );
        assert_eq!(project["Environment"]["PrivilegedMode"], "true");
        let image_repo = project["Environment"]["EnvironmentVariables"]
            .as_array()
            .and_then(|v| v.iter().find(|e| e["Name"] == "IMAGE_REPO"))
            .map(|e| e["Value"].clone());
        assert_eq!(
            image_repo,
            Some(serde_json::json!(format!(
                "{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/gantry-builds/{domain}"
            )))
        );
    }
    // The whole set of roles: the two domains' and the untrusted one.
    let builds: Vec<&String> = roles.iter().filter(|r| r.contains("BuildRole")).collect();
    assert_eq!(builds.len(), 3, "{builds:?}");
}

/// Issue 17: a buildspec's `env.secrets-manager` secrets are named under
/// the domain's path as parameters are. Each domain's build role may read
/// the values of its own only; inject-secrets may describe (never read)
/// those under the prefix; a fork's build and the pipeline's read none.
#[test]
fn secrets_manager_secrets_are_read_by_their_own_domains_builds_only() {
    let d = deployed(&["alpha", "beta"]);
    let secret =
        |name: &str| format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf");
    for (domain, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let role = format!("BuildRole{domain}");
        let own = secret(&format!("/gantry/{domain}/npm"));
        assert!(
            d.allows(&role, "secretsmanager:GetSecretValue", &own),
            "{role}"
        );
        for name in [
            format!("/gantry/{other}/npm"),
            "/gantry/npm".to_owned(),
            "prod/db".to_owned(),
        ] {
            assert!(
                !d.allows(&role, "secretsmanager:GetSecretValue", &secret(&name)),
                "{role} reads {name}"
            );
        }
        assert!(!d.allows(&role, "secretsmanager:DescribeSecret", &own));
    }
    for role in [
        "UntrustedBuildRole",
        "InjectSecretsFunction",
        "StartBuildFunction",
    ] {
        assert!(
            !d.allows(
                role,
                "secretsmanager:GetSecretValue",
                &secret("/gantry/alpha/npm")
            ),
            "{role} reads a secret's value"
        );
    }
    assert!(d.allows(
        "InjectSecretsFunction",
        "secretsmanager:DescribeSecret",
        &secret("/gantry/alpha/npm")
    ));
    assert!(!d.allows(
        "InjectSecretsFunction",
        "secretsmanager:DescribeSecret",
        &secret("prod/db")
    ));
}

/// A fork's build (any domain): no secrets, no registry, and its log only in
/// streams under `untrusted/` (issue 11, item 6).
#[test]
fn the_untrusted_role_holds_nothing_and_writes_only_untrusted_log_streams() {
    let d = deployed(&["alpha", "beta"]);
    let role = "UntrustedBuildRole";
    for action in SECRET_READS.iter().chain(IMAGE_WRITES) {
        for resource in [
            ssm("/gantry/alpha/docker/password"),
            ecr("gantry-builds/alpha"),
        ] {
            assert!(!d.allows(role, action, &resource), "{role} may {action}");
        }
    }
    for action in [
        "kms:Decrypt",
        "iam:PassRole",
        "sts:AssumeRole",
        "secretsmanager:GetSecretValue",
    ] {
        assert!(!d.allows(role, action, "*"), "{role} may {action}");
        assert!(
            !d.allows(
                role,
                action,
                &format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/k")
            ),
            "{role} may {action}"
        );
    }
    let stream = |name: &str| {
        format!(
            "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/gantry-alpha:log-stream:{name}"
        )
    };
    assert!(d.allows(role, "logs:PutLogEvents", &stream("untrusted/0b5c9b7e")));
    assert!(d.allows(role, "logs:CreateLogStream", &stream("untrusted/0b5c9b7e")));
    assert!(
        !d.allows(role, "logs:PutLogEvents", &stream("0b5c9b7e")),
        "a fork's build could write into a trusted build's log"
    );
    assert_eq!(
        gantry_start_build::codebuild::UNTRUSTED_LOG_STREAM_PREFIX,
        "untrusted",
        "the prefix start-build names the stream with is the one the role allows"
    );
    // No policy attached to it from elsewhere but the layer cache's reads
    // (checked in the_layer_cache_is_each_domains_own_and_forks_only_read_it).
    for kind in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
        for id in d.of_type(kind) {
            let roles = d.resources[&id]["Properties"]["Roles"].to_string();
            assert!(
                !roles.contains(role) || id.starts_with("UntrustedBuild") && id != role,
                "{id} attaches a policy to {role}"
            );
        }
    }
    assert!(d.resources[role]["Properties"]["ManagedPolicyArns"].is_null());

    // start-build may hand CodeBuild this role and no other.
    let untrusted_arn = format!("arn:aws:iam::{ACCOUNT}:role/{role}");
    assert!(d.allows("StartBuildFunction", "iam:PassRole", &untrusted_arn));
    for other in ["BuildRolealpha", "BuildRolebeta"] {
        assert!(
            !d.allows(
                "StartBuildFunction",
                "iam:PassRole",
                &format!("arn:aws:iam::{ACCOUNT}:role/{other}")
            ),
            "start-build may pass {other}"
        );
    }
}

/// inject-secrets strips a fork's buildspec, which may be in the bucket
/// when over 32 KB: it must be able to read it, or the build dead-letters
/// (issue 11, item 6).
#[test]
fn inject_secrets_can_read_the_large_buildspecs_it_strips() {
    let d = deployed(&["build"]);
    let object = format!("arn:aws:s3:::{BUCKET}/validated/3f1c.yml");
    assert!(d.allows("InjectSecretsFunction", "s3:GetObject", &object));
    assert!(d.allows("InjectSecretsFunction", "s3:PutObject", &object));
}

/// The build page reads what it shows (records, history, the builds'
/// logs, the key) and writes nothing; the key that signs its links is the
/// reporting functions' to make, and no build's to read.
#[test]
fn the_build_page_reads_only_what_it_shows_and_no_build_reads_its_key() {
    let d = deployed(&["alpha"]);
    let key = ssm("/gantry/page-key");
    let object = |key: &str| format!("arn:aws:s3:::{BUCKET}/{key}");
    let page = "BuildPageFunction";
    assert!(d.allows(page, "ssm:GetParameter", &key));
    assert!(d.allows(
        page,
        "s3:GetObject",
        &object("builds/gantry-alpha/0b5c.json")
    ));
    assert!(d.allows(
        page,
        "s3:GetObject",
        &object("history/ab12/0001/gantry-alpha/0b5c")
    ));
    let log = format!(
        "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/gantry-alpha:log-stream:untrusted/0b5c"
    );
    assert!(d.allows(page, "logs:GetLogEvents", &log));
    for (action, resource) in [
        ("ssm:PutParameter", key.clone()),
        ("ssm:GetParameter", ssm("/gantry/github-token")),
        ("ssm:GetParameter", ssm("/gantry/alpha/docker/password")),
        ("s3:PutObject", object("builds/gantry-alpha/0b5c.json")),
        ("s3:GetObject", object("effects/ab12")),
        ("s3:GetObject", object("deliveries/x")),
        (
            "logs:GetLogEvents",
            format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/gantry-webhook:log-stream:x"
            ),
        ),
    ] {
        assert!(
            !d.allows(page, action, &resource),
            "the page may {action} {resource}"
        );
    }
    for signer in ["BuildEventsFunction", "ReconcileFunction"] {
        assert!(d.allows(signer, "ssm:PutParameter", &key), "{signer}");
        assert!(d.allows(signer, "ssm:GetParameter", &key), "{signer}");
        assert!(d.allows(
            signer,
            "s3:PutObject",
            &object("history/ab12/0001/gantry-alpha/0b5c")
        ));
    }
    assert!(d.allows(
        "StartBuildFunction",
        "s3:PutObject",
        &object("history/ab12/0001/gantry-alpha/0b5c")
    ));
    for role in ["BuildRolealpha", "UntrustedBuildRole"] {
        for action in SECRET_READS {
            assert!(
                !d.allows(role, action, &key),
                "{role} may {action} the page key"
            );
        }
    }
    // Its URL is given to the signers, and its own environment names no
    // key it could write.
    let env = |f: &str| d.resources[f]["Properties"]["Environment"]["Variables"].clone();
    for signer in ["BuildEventsFunction", "ReconcileFunction"] {
        assert!(
            env(signer)["BUILD_PAGE_URL"].is_string(),
            "{signer}: {}",
            env(signer)
        );
        assert_eq!(env(signer)["PAGE_KEY_PARAMETER"], "/gantry/page-key");
    }
    assert_eq!(env(page)["PAGE_LINK_DAYS"], "30");
}

/// A cold start's first read (`gantry_aws::first_read`) asks for all of a
/// function's own parameters in one `GetParameters`, which IAM refuses
/// whole if the role may not read one of them: the webhook's secrets and
/// configuration; the reporters' configuration, token or App key, and
/// page key.
#[test]
fn each_function_may_read_all_of_its_first_read_in_one_request() {
    let d = deployed(&["alpha"]);
    let reporter = [
        "/gantry/config",
        "/gantry/github-token",
        "/gantry/github-app/private-key",
    ];
    let signer = ["/gantry/page-key"];
    for (function, names) in [
        (
            "WebhookFunction",
            vec![
                "/gantry/webhook-secret",
                "/gantry/webhook-secret-previous",
                "/gantry/config",
            ],
        ),
        ("BuildEventsFunction", [&reporter[..], &signer].concat()),
        ("ReconcileFunction", [&reporter[..], &signer].concat()),
        ("ScheduleFunction", reporter.to_vec()),
    ] {
        for name in names {
            assert!(
                d.allows(function, "ssm:GetParameters", &ssm(name)),
                "{function} {name}"
            );
        }
    }
}

/// A flood of requests must not take every function's concurrency: the
/// webhook's can be reserved (issue 11, item 6).
#[test]
fn the_webhook_concurrency_can_be_reserved() {
    let reserved = |value: &str| {
        let text =
            std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
        let d = Deployed::from_template(
            &text,
            &[("WebhookReservedConcurrency", serde_json::json!(value))],
        );
        d.resources["WebhookFunction"]["Properties"]
            .get("ReservedConcurrentExecutions")
            .cloned()
    };
    assert_eq!(reserved("20"), Some(serde_json::json!("20")));
    assert_eq!(reserved("0"), None, "0 leaves it unreserved");
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
    let tap = Tap::create(
        &local.sdk,
        TapSpec {
            bus: "default",
            queue: "codebuild-rule-check",
            rule: "codebuild-rule-check",
            target_id: "queue",
            pattern: &pattern,
        },
    )
    .await
    .expect("a rule with a queue as its target");
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
        let received = tap.receive(Duration::from_secs(1)).await.expect("receive");
        if received.is_empty() {
            break;
        }
        for body in received {
            routed.push(body["detail"]["case"].as_u64().expect("case") as usize);
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

/// Issue 11, item 5: each function's own retries (AWS calls, GitHub, chat,
/// CodeBuild at its limit) fit inside its `Timeout`, so Lambda never kills
/// one between a claim and its effect under the defaults; and the code's
/// idea of each timeout is the template's.
#[test]
fn every_functions_retries_fit_inside_its_timeout() {
    use gantry_aws::AwsTimeouts;
    use gantry_aws::github::contents::DEFAULT_TIMEOUT as GITHUB;
    use std::time::Duration as D;
    let d = deployed(&["build"]);
    let properties = |f: &str| d.resources[f]["Properties"].clone();
    let timeout = |f: &str| {
        let t = properties(f)["Timeout"].clone();
        D::from_secs(
            t.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| t.as_u64())
                .unwrap_or_else(|| panic!("{f}: Timeout {t}")),
        )
    };
    let env = |f: &str, name: &str| -> u64 {
        properties(f)["Environment"]["Variables"][name]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{f}: {name}"))
    };

    assert_eq!(timeout("WebhookFunction"), gantry_webhook::TIMEOUT);
    let webhook = gantry_webhook::worst_case(AwsTimeouts::WEBHOOK.operation);
    assert!(webhook <= gantry_webhook::TIMEOUT, "webhook: {webhook:?}");

    assert_eq!(
        timeout("ValidateBuildspecFunction"),
        gantry_validate_buildspec::TIMEOUT
    );
    let validate = gantry_validate_buildspec::worst_case(GITHUB, AwsTimeouts::SHORT.operation);
    assert!(
        validate <= gantry_validate_buildspec::TIMEOUT,
        "validate-buildspec: {validate:?}"
    );

    assert_eq!(timeout("ScheduleFunction"), gantry_schedule::TIMEOUT);
    let schedule = gantry_schedule::per_schedule(GITHUB, AwsTimeouts::SHORT.operation);
    assert!(
        schedule <= gantry_schedule::TIMEOUT,
        "schedule: {schedule:?}"
    );

    assert_eq!(timeout("StartBuildFunction"), gantry_start_build::TIMEOUT);
    let retry = gantry_start_build::Retry {
        attempts: u32::try_from(env("StartBuildFunction", "START_RETRY_ATTEMPTS"))
            .unwrap_or(u32::MAX),
        base: D::from_millis(env("StartBuildFunction", "START_RETRY_BASE_MS")),
    };
    // The retries, then the rejection's record and publication, the claim
    // and the group's read before them.
    let start = retry.worst_case(AwsTimeouts::LONG.operation) + AwsTimeouts::LONG.operation * 4;
    assert!(
        start <= gantry_start_build::TIMEOUT,
        "start-build: {start:?}"
    );

    assert_eq!(timeout("BuildEventsFunction"), gantry_build_events::TIMEOUT);
    // At least a status and one chat route per invocation, so every retry
    // makes progress; routes past the deadline are left to the retry.
    let status = GITHUB + AwsTimeouts::LONG.operation * 2;
    let route = gantry_build_events::CHAT_RETRY.worst_case() + AwsTimeouts::LONG.operation * 2;
    assert!(
        status + route <= gantry_build_events::TIMEOUT,
        "build-events: {status:?} + {route:?}"
    );
    assert_eq!(timeout("ReconcileFunction"), gantry_reconcile::TIMEOUT);
}

/// Issue 16: the schedule function and the reporters may touch the records
/// their code writes, by the keys the code makes, and the schedule
/// function nothing else: no build's record, no secret, no CodeBuild.
#[test]
fn the_schedule_function_and_the_reporters_may_touch_exactly_the_records_their_code_writes() {
    use gantry_core::github::statuses::StatusState;
    use gantry_core::records::Effect;
    use gantry_core::schedule::{ScheduleId, done_key};
    let d = deployed(&["alpha"]);
    let object = |key: &str| format!("arn:aws:s3:::{BUCKET}/{key}");
    let schedule = "ScheduleFunction";
    let id = ScheduleId::new("octo-org/widgets", "nightly");
    let claim = Effect::Schedule {
        schedule: id.as_str(),
        minute: 1_767_578_400,
    }
    .key();
    let done = done_key(&id.correlation_id(1_767_578_400));
    for (action, key) in [
        ("s3:GetObject", claim.as_str()),
        ("s3:PutObject", claim.as_str()),
        // A failed firing's claim is given back for the retry.
        ("s3:DeleteObject", claim.as_str()),
        ("s3:GetObject", id.state_key().as_str()),
        ("s3:PutObject", id.state_key().as_str()),
        ("s3:GetObject", done.as_str()),
    ] {
        assert!(
            d.allows(schedule, action, &object(key)),
            "{schedule} may not {action} {key}"
        );
    }
    let bus = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/gantry");
    assert!(d.allows(schedule, "events:PutEvents", &bus));
    assert!(d.allows(schedule, "ssm:GetParameter", &ssm("/gantry/config")));
    for (action, resource) in [
        ("s3:GetObject", object("builds/gantry-alpha/0b5c.json")),
        ("s3:PutObject", object("badges/octo-org/widgets/main.svg")),
        ("s3:DeleteObject", object(&id.state_key())),
        ("ssm:GetParameter", ssm("/gantry/alpha/docker/password")),
        (
            "codebuild:StartBuild",
            format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/gantry-alpha"),
        ),
    ] {
        assert!(
            !d.allows(schedule, action, &resource),
            "{schedule} may {action} {resource}"
        );
    }
    // Reconcile claims each redelivery of a lost delivery.
    let redelivery = gantry_core::github::deliveries::claim_key("72d3162e-cc78-11e3-81ab", 1);
    for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
        assert!(
            d.allows("ReconcileFunction", action, &object(&redelivery)),
            "reconcile may not {action} {redelivery}"
        );
        assert!(!d.allows("BuildEventsFunction", action, &object(&redelivery)));
    }
    // The reporters keep the aggregate and mark a scheduled build's end.
    let prefix = gantry_core::aggregate::prefix("octo-org/widgets", "9f2c1e4", "gantry/all");
    let status = Effect::Status {
        subject: "gantry-alpha:0b5c",
        state: Some(StatusState::Pending),
    }
    .key();
    for reporter in ["BuildEventsFunction", "ReconcileFunction"] {
        for key in [
            gantry_core::aggregate::member_key(&prefix, "lint"),
            gantry_core::aggregate::posted_key(&prefix),
            done.clone(),
            status.clone(),
        ] {
            for action in ["s3:GetObject", "s3:PutObject"] {
                assert!(
                    d.allows(reporter, action, &object(&key)),
                    "{reporter} may not {action} {key}"
                );
            }
        }
    }
}

/// Issue 17: the Docker layer cache. Each domain's is its own repository;
/// its trusted builds read and write it, no other domain's can; a fork's
/// build reads only its own domain's (the condition names the domain's
/// project) and never writes any, so it cannot poison what a trusted build
/// reads. The project's own cache follows ProjectCache.
#[test]
fn the_layer_cache_is_each_domains_own_and_forks_only_read_it() {
    const CACHE_READS: &[&str] = &["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"];
    let d = deployed(&["alpha", "beta"]);
    for (domain, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let role = format!("BuildRole{domain}");
        let own = ecr(&format!("gantry-builds/{domain}/cache"));
        let others = ecr(&format!("gantry-builds/{other}/cache"));
        for action in CACHE_READS.iter().chain(&IMAGE_WRITES[..4]) {
            assert!(d.allows(&role, action, &own), "{role} may not {action}");
        }
        for action in CACHE_READS.iter().chain(IMAGE_WRITES) {
            assert!(!d.allows(&role, action, &others), "{role} may {action}");
        }
        // The project tells the buildspec where its cache is.
        let project = &d.resources[&format!("BuildProject{domain}")]["Properties"];
        let variable = |name: &str| {
            project["Environment"]["EnvironmentVariables"]
                .as_array()
                .and_then(|v| v.iter().find(|e| e["Name"] == name))
                .map(|e| e["Value"].clone())
        };
        assert_eq!(
            variable("CACHE_REPO"),
            Some(serde_json::json!(format!(
                "{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/gantry-builds/{domain}/cache"
            )))
        );
        assert_eq!(
            variable("BUILDKIT_IMAGE"),
            Some(serde_json::json!("moby/buildkit:buildx-stable-1"))
        );
        // By default CodeBuild's local caches, all three modes.
        assert_eq!(project["Cache"]["Type"], "LOCAL");
        assert_eq!(
            project["Cache"]["Modes"],
            serde_json::json!([
                "LOCAL_DOCKER_LAYER_CACHE",
                "LOCAL_SOURCE_CACHE",
                "LOCAL_CUSTOM_CACHE"
            ])
        );
    }

    // A fork's build: never a write to any cache or image repository.
    let untrusted = "UntrustedBuildRole";
    for domain in ["alpha", "beta"] {
        for repository in [
            format!("gantry-builds/{domain}/cache"),
            format!("gantry-builds/{domain}"),
        ] {
            for action in IMAGE_WRITES {
                assert!(
                    !d.allows(untrusted, action, &ecr(&repository)),
                    "a fork's build may {action} on {repository}"
                );
            }
        }
        assert!(
            !d.allows(
                untrusted,
                "ecr:BatchGetImage",
                &ecr(&format!("gantry-builds/{domain}"))
            ),
            "a fork's build may pull the domain's images"
        );
    }
    // Its reads of a cache hold only from that cache's domain's project:
    // every statement granting one names the project in its condition.
    for statement in d.statements(untrusted) {
        let grants_a_cache_read = CACHE_READS.iter().any(|action| {
            serde_json::to_string(&statement["Action"])
                .unwrap_or_default()
                .contains(action)
        });
        if !grants_a_cache_read {
            continue;
        }
        let resource = statement["Resource"].as_str().unwrap_or_default();
        let domain = resource
            .strip_prefix(&format!(
                "arn:aws:ecr:{REGION}:{ACCOUNT}:repository/gantry-builds/"
            ))
            .and_then(|rest| rest.strip_suffix("/cache"))
            .unwrap_or_else(|| panic!("a cache read of {resource}"));
        assert_eq!(
            statement["Condition"]["ArnEquals"]["codebuild:projectArn"],
            format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/gantry-{domain}"),
            "{statement}"
        );
    }
    assert!(d.allows(
        untrusted,
        "ecr:BatchGetImage",
        &ecr("gantry-builds/alpha/cache")
    ));

    // With ProjectCache=S3, each domain's paths live under its own prefix,
    // written by its trusted builds only.
    let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
    let s3 = Deployed::from_template(
        &text,
        &[
            ("TrustDomains", serde_json::json!(["alpha", "beta"])),
            ("ProjectCache", serde_json::json!("S3")),
        ],
    );
    let object = |path: &str| format!("arn:aws:s3:::{BUCKET}/{path}");
    let project = &s3.resources["BuildProjectalpha"]["Properties"];
    assert_eq!(project["Cache"]["Type"], "S3");
    assert_eq!(
        project["Cache"]["Location"],
        format!("{BUCKET}/cache/alpha")
    );
    assert!(s3.allows(
        "BuildRolealpha",
        "s3:PutObject",
        &object("cache/alpha/x.zip")
    ));
    assert!(!s3.allows(
        "BuildRolealpha",
        "s3:PutObject",
        &object("cache/beta/x.zip")
    ));
    assert!(!s3.allows(untrusted, "s3:PutObject", &object("cache/alpha/x.zip")));
    assert!(!s3.allows(untrusted, "s3:GetObject", &object("cache/alpha/x.zip")));
    // Without a project cache: none, and the role has no S3 cache grant.
    let none = Deployed::from_template(
        &text,
        &[
            ("TrustDomains", serde_json::json!(["alpha"])),
            ("ProjectCache", serde_json::json!("NONE")),
        ],
    );
    assert_eq!(
        none.resources["BuildProjectalpha"]["Properties"]["Cache"]["Type"],
        "NO_CACHE"
    );
    assert!(!none.allows(
        "BuildRolealpha",
        "s3:PutObject",
        &object("cache/alpha/x.zip")
    ));
}

/// Issue 17: what gantry.yaml may ask a build to run on is the operator's
/// to list; start-build reads the lists the template gives it, and its own
/// defaults (where none is given, as in gantry dev) are the template's.
#[test]
fn start_build_reads_the_operators_compute_lists_whose_defaults_are_the_codes() {
    let d = deployed(&["build"]);
    let env = d.resources["StartBuildFunction"]["Properties"]["Environment"]["Variables"].clone();
    let settings = gantry_start_build::Settings::from_env(|name| {
        env.get(name).and_then(|v| v.as_str()).map(str::to_owned)
    })
    .expect("start-build's settings from the template");
    assert_eq!(
        settings.limits,
        gantry_start_build::codebuild::ComputeLimits::default()
    );
    let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
    let narrowed = Deployed::from_template(
        &text,
        &[
            (
                "AllowedComputeTypes",
                serde_json::json!(["BUILD_GENERAL1_SMALL"]),
            ),
            ("AllowedImages", serde_json::json!([])),
            ("MaxBuildTimeoutMinutes", serde_json::json!("30")),
        ],
    );
    let env =
        narrowed.resources["StartBuildFunction"]["Properties"]["Environment"]["Variables"].clone();
    let settings = gantry_start_build::Settings::from_env(|name| {
        env.get(name).and_then(|v| v.as_str()).map(str::to_owned)
    })
    .expect("settings");
    assert_eq!(
        settings.limits,
        gantry_start_build::codebuild::ComputeLimits {
            compute_types: vec!["BUILD_GENERAL1_SMALL".into()],
            images: Vec::new(),
            max_timeout_minutes: 30,
        }
    );
}

/// Issue 17: a buildspec's `reports:` section needs the build role to
/// create and update report groups, which CodeBuild names
/// `<project>-<report>`. Each domain's builds write their own only; a
/// fork's build writes only those of the domain whose project runs it.
#[test]
fn test_reports_go_to_the_domains_own_report_groups() {
    const REPORT_WRITES: &[&str] = &[
        "codebuild:CreateReportGroup",
        "codebuild:CreateReport",
        "codebuild:UpdateReport",
        "codebuild:BatchPutTestCases",
        "codebuild:BatchPutCodeCoverages",
    ];
    let d = deployed(&["alpha", "beta"]);
    let group = |name: &str| format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/{name}");
    for (domain, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let role = format!("BuildRole{domain}");
        for action in REPORT_WRITES {
            assert!(
                d.allows(&role, action, &group(&format!("gantry-{domain}-junit"))),
                "{role} may not {action}"
            );
            assert!(
                !d.allows(&role, action, &group(&format!("gantry-{other}-junit"))),
                "{role} may {action} on {other}'s reports"
            );
        }
    }
    // A fork's report writes: each grant names the report groups of one
    // domain and holds only from that domain's project.
    let untrusted = "UntrustedBuildRole";
    assert!(d.allows(
        untrusted,
        "codebuild:BatchPutTestCases",
        &group("gantry-alpha-junit")
    ));
    for statement in d.statements(untrusted) {
        let actions = serde_json::to_string(&statement["Action"]).unwrap_or_default();
        if !REPORT_WRITES.iter().any(|a| actions.contains(a)) {
            continue;
        }
        let resource = statement["Resource"].as_str().unwrap_or_default();
        let domain = resource
            .strip_prefix(&format!(
                "arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/gantry-"
            ))
            .and_then(|rest| rest.strip_suffix("-*"))
            .unwrap_or_else(|| panic!("a report write on {resource}"));
        assert_eq!(
            statement["Condition"]["ArnEquals"]["codebuild:projectArn"],
            format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/gantry-{domain}"),
            "{statement}"
        );
    }
    // The reporters read the counts and the failed cases of Gantry's
    // report groups, and write none.
    for role in ["BuildEventsFunction", "ReconcileFunction"] {
        for action in ["codebuild:BatchGetReports", "codebuild:DescribeTestCases"] {
            assert!(
                d.allows(role, action, &group("gantry-alpha-junit")),
                "{role} may not {action}"
            );
            assert!(
                !d.allows(role, action, &group("someone-elses-junit")),
                "{role} may {action} outside Gantry's report groups"
            );
        }
        for action in REPORT_WRITES {
            assert!(
                !d.allows(role, action, &group("gantry-alpha-junit")),
                "{role} may {action}"
            );
        }
    }
}

/// Issue 17: a buildspec's `artifacts:` go to the bucket under
/// `artifacts/<project>/`: each domain's build role may upload its own
/// project's and nothing else in the bucket; a fork's build role may upload
/// nothing (it could replace a trusted build's files); the page may read
/// them to link them; they expire after ArtifactRetentionDays.
#[test]
fn artifacts_are_uploaded_by_their_own_projects_builds_only() {
    let d = deployed(&["alpha", "beta"]);
    let object = |key: &str| format!("arn:aws:s3:::{BUCKET}/{key}");
    let path = |project: &str| gantry_core::records::artifacts_path(project);
    for (domain, other) in [("alpha", "beta"), ("beta", "alpha")] {
        let role = format!("BuildRole{domain}");
        let own = object(&format!(
            "{}/7f1c/dist/app.tgz",
            path(&format!("gantry-{domain}"))
        ));
        let theirs = object(&format!(
            "{}/7f1c/dist/app.tgz",
            path(&format!("gantry-{other}"))
        ));
        assert!(d.allows(&role, "s3:PutObject", &own), "{role}");
        // CodeBuild checks the bucket before uploading.
        for action in ["s3:GetBucketAcl", "s3:GetBucketLocation"] {
            assert!(
                d.allows(&role, action, &format!("arn:aws:s3:::{BUCKET}")),
                "{role}: {action}"
            );
        }
        assert!(
            !d.allows(&role, "s3:PutObject", &theirs),
            "{role} writes {other}'s"
        );
        for key in [
            "builds/gantry-alpha/7f1c.json",
            "validated/3f1c.yml",
            "artifacts/x",
        ] {
            assert!(
                !d.allows(&role, "s3:PutObject", &object(key)),
                "{role}: {key}"
            );
        }
    }
    for key in [
        "artifacts/gantry-alpha/7f1c/dist/app.tgz",
        "artifacts/gantry-beta/7f1c/dist/app.tgz",
    ] {
        assert!(!d.allows("UntrustedBuildRole", "s3:PutObject", &object(key)));
    }
    assert!(d.allows(
        "BuildPageFunction",
        "s3:GetObject",
        &object("artifacts/gantry-alpha/7f1c/dist/app.tgz")
    ));
    assert!(!d.allows(
        "BuildPageFunction",
        "s3:PutObject",
        &object("artifacts/gantry-alpha/7f1c/dist/app.tgz")
    ));
    let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
    let rule = text
        .split("- Id: expire-build-artifacts")
        .nth(1)
        .and_then(|rest| rest.split("- Id:").next())
        .expect("a lifecycle rule for artifacts");
    assert!(rule.contains(&format!(
        "Prefix: {}",
        gantry_core::records::ARTIFACTS_PREFIX
    )));
    assert!(rule.contains("ExpirationInDays: !Ref ArtifactRetentionDays"));
}

/// Issue 17: the seed's pipeline, as an option. With Pipeline=true: a V2
/// pipeline whose stages run Source (the GitHub connection), then Validate
/// (pipeline-action), then Build (its own project, the docker buildspec),
/// triggered by pushes to the listed branches and paths, its executions
/// reported by build-events; each role holds only its stage's needs. With
/// the default, none of it exists.
#[test]
fn the_optional_pipeline_validates_then_builds_with_roles_of_its_own() {
    let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
    const CONNECTION: &str = "arn:aws:codeconnections:eu-west-1:123456789012:connection/0c5b4c0e-6f1b-4b5e-9a39-1f2e3d4c5b6a";
    let d = Deployed::from_template(
        &text,
        &[
            ("Pipeline", serde_json::json!("true")),
            ("GitHubConnectionArn", serde_json::json!(CONNECTION)),
            ("PipelineRepository", serde_json::json!("octo-org/widgets")),
            ("PipelineBranches", serde_json::json!(["main", "release/*"])),
            (
                "PipelineFilePaths",
                serde_json::json!(["src/**", "Dockerfile"]),
            ),
        ],
    );
    let pipeline = &d.resources["GantryPipeline"]["Properties"];
    assert_eq!(pipeline["PipelineType"], "V2");
    assert_eq!(pipeline["ExecutionMode"], "SUPERSEDED");
    let stages: Vec<(String, String)> = pipeline["Stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|stage| {
            stage["Actions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |a| {
                    (
                        stage["Name"].as_str().unwrap_or_default().to_owned(),
                        a["ActionTypeId"]["Provider"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("Source", "CodeStarSourceConnection"),
            ("Validate", "Lambda"),
            ("Build", "CodeBuild"),
        ]
        .map(|(s, p)| (s.to_owned(), p.to_owned()))
    );
    let action = |stage: usize| &pipeline["Stages"][stage]["Actions"][0];
    assert_eq!(action(0)["Configuration"]["ConnectionArn"], CONNECTION);
    assert_eq!(
        action(0)["Configuration"]["FullRepositoryId"],
        "octo-org/widgets"
    );
    assert_eq!(action(0)["Configuration"]["BranchName"], "main");
    assert_eq!(
        action(1)["Configuration"]["FunctionName"],
        "PipelineActionFunction"
    );
    assert_eq!(action(2)["Configuration"]["ProjectName"], "gantry-pipeline");
    // Both later stages read the source artifact the first one makes.
    for stage in [1, 2] {
        assert_eq!(
            action(stage)["InputArtifacts"][0]["Name"],
            action(0)["OutputArtifacts"][0]["Name"]
        );
    }
    let push = &pipeline["Triggers"][0]["GitConfiguration"]["Push"][0];
    assert_eq!(
        push["Branches"]["Includes"],
        serde_json::json!(["main", "release/*"])
    );
    assert_eq!(
        push["FilePaths"]["Includes"],
        serde_json::json!(["src/**", "Dockerfile"])
    );
    // The build stage runs the docker buildspec, pushing to its own
    // repository.
    let project = &d.resources["PipelineBuildProject"]["Properties"];
    assert_eq!(project["Source"]["Type"], "CODEPIPELINE");
    assert_eq!(
        project["Source"]["BuildSpec"],
        format!("arn:aws:s3:::{BUCKET}/buildspecs/docker.yml")
    );

    // The pipeline's role: its artifacts, its connection, its two actions.
    let role = "PipelineRole";
    let object = |key: &str| format!("arn:aws:s3:::{BUCKET}/{key}");
    assert!(d.allows(role, "s3:PutObject", &object("pipeline/x/SourceOutput/abc")));
    assert!(!d.allows(role, "s3:PutObject", &object("builds/gantry-build/x.json")));
    assert!(d.allows(role, "codeconnections:UseConnection", CONNECTION));
    assert!(d.allows(
        role,
        "lambda:InvokeFunction",
        &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:PipelineActionFunction")
    ));
    assert!(!d.allows(
        role,
        "lambda:InvokeFunction",
        &format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:StartBuildFunction")
    ));
    let project_arn = |name: &str| format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{name}");
    assert!(d.allows(
        role,
        "codebuild:StartBuild",
        &project_arn("gantry-pipeline")
    ));
    assert!(
        !d.allows(role, "codebuild:StartBuild", &project_arn("gantry-build")),
        "the pipeline may not start the trust domains' builds"
    );
    // The build stage's role: its repository, no secrets, no domain's images.
    let build = "PipelineBuildRole";
    assert!(d.allows(build, "ecr:PutImage", &ecr("gantry-builds/pipeline")));
    assert!(!d.allows(build, "ecr:PutImage", &ecr("gantry-builds/build")));
    for action in SECRET_READS {
        assert!(
            !d.allows(build, action, &ssm("/gantry/build/docker/password")),
            "{build} may {action}"
        );
    }
    assert!(!d.allows(build, "s3:PutObject", &object("builds/x.json")));
    // Only its own project may take the role: a trust domain's build
    // (whose buildspec a repository writes) never pushes the pipeline's
    // images.
    let trust = &d.resources[build]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(
        trust["Condition"]["ArnLike"]["aws:SourceArn"],
        project_arn("gantry-pipeline"),
        "{trust}"
    );
    assert!(
        text.contains("!Not [!Contains [!Ref TrustDomains, \"pipeline\"]]"),
        "a trust domain called pipeline would be the pipeline's project"
    );
    // Its executions go to build-events.
    let rule = &d.resources["GantryPipelineEventsRule"]["Properties"];
    assert_eq!(
        rule["EventPattern"]["source"],
        serde_json::json!(["aws.codepipeline"])
    );
    assert_eq!(
        rule["Targets"][0]["Arn"],
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:BuildEventsFunction")
    );

    // The default: no pipeline, no role, no project.
    let none = deployed(&["build"]);
    for id in [
        "GantryPipeline",
        "PipelineRole",
        "PipelineBuildRole",
        "PipelineBuildProject",
        "GantryPipelineEventsRule",
    ] {
        assert!(
            !none.resources.contains_key(id),
            "{id} without Pipeline=true"
        );
    }
}

/// What `scripts/deploy` (and SAM's rust-cargolambda builder) relies on:
/// every function is built by cargo-lambda from `CodeUri: .`, naming its
/// binary, which the package `gantry-<binary>` under `functions/<binary>`
/// builds; and the script's rewrite points each at its own zip, exactly
/// once.
#[test]
fn every_function_names_the_binary_its_package_builds_and_the_deploy_script_finds_it() {
    let template = template();
    let Some(Value::Map(resources)) = template.get("Resources").map(|r| &r.value) else {
        panic!("template has no Resources")
    };
    let mut binaries = Vec::new();
    for (key, node) in resources {
        if node.get("Type").and_then(Node::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = key.as_str().unwrap_or_default();
        let metadata = node.get("Metadata");
        assert_eq!(
            metadata
                .and_then(|m| m.get("BuildMethod"))
                .and_then(Node::as_str),
            Some("rust-cargolambda"),
            "{id}"
        );
        let binary = metadata
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|p| p.get("Binary"))
            .and_then(Node::as_str)
            .unwrap_or_else(|| panic!("{id} names no binary"));
        assert_eq!(
            node.get("Properties")
                .and_then(|p| p.get("CodeUri"))
                .and_then(Node::as_str),
            Some("."),
            "{id}"
        );
        let manifest = std::fs::read_to_string(
            workspace()
                .join("functions")
                .join(binary)
                .join("Cargo.toml"),
        )
        .unwrap_or_else(|e| panic!("{id}: functions/{binary}/Cargo.toml: {e}"));
        assert!(
            manifest.contains(&format!("name = \"gantry-{binary}\""))
                && manifest.contains(&format!("[[bin]]\nname = \"{binary}\"")),
            "{id}: functions/{binary} must be the package gantry-{binary} with the bin {binary}"
        );
        binaries.push(binary.to_owned());
    }
    assert_eq!(binaries.len(), 9, "{binaries:?}");
    // The script's rewrite, run on the template: one zip per function.
    let script =
        std::fs::read_to_string(workspace().join("scripts/deploy")).expect("scripts/deploy");
    let rewrite = script
        .split("<<'EOF'\n")
        .nth(1)
        .and_then(|rest| rest.split("\nEOF\n").next())
        .expect("the rewrite in scripts/deploy");
    let dir = std::env::temp_dir().join(format!("gantry-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = dir.join("template.yaml");
    let status = Command::new("python3")
        .arg("-c")
        .arg(rewrite)
        .arg(dir.join("lambda"))
        .arg(&out)
        .current_dir(workspace())
        .status()
        .expect("python3");
    assert!(status.success());
    let rewritten = std::fs::read_to_string(&out).expect("the rewritten template");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!rewritten.contains("CodeUri: .\n"));
    for binary in &binaries {
        let zip = format!("/lambda/{binary}/bootstrap.zip\n");
        assert_eq!(rewritten.matches(&zip).count(), 1, "{binary}");
    }
}
