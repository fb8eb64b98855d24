//! CodePipeline executions that run Gantry's invoke action, reported as a
//! commit status: the corpus's execution state change events (from the AWS
//! documentation) into build-events, with claims in the moto server's S3, a
//! loopback GitHub, and a loopback server speaking CodePipeline's JSON API
//! (moto does not implement GetPipelineExecution).

use gantry_build_events::pipeline::{ExecutionState, parse_event};
use gantry_build_events::{Deps, HandlerError, Report, handle_event};
use gantry_core::config::DEV_CONFIG;
use gantry_core::github::statuses::StatusState;
use gantry_core::yaml::{self, Node, Value as Yaml};
use gantry_e2e::{GITHUB_TOKEN, LocalStack, capture_logs, corpus, workspace};
use gantry_local::stack;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "da7add70427515f20f736525be1b92bf23ff6b6f";
const REPO: &str = "Codertocat/Hello-World";
const PIPELINE: &str = "myPipeline";
const GET_EXECUTION: &str = "CodePipeline_20150709.GetPipelineExecution";

/// The execution state change samples of the corpus that are valid JSON;
/// 17 is the documentation's broken one.
const EXECUTION_EVENTS: &[&str] = &[
    "03_rust_example-codepipeline-execution-state-change-event.json",
    "11_doc_codepipeline_pipeline-started-event-emitted.json",
    "12_doc_codepipeline_pipeline-started-event-processed.json",
    "13_doc_codepipeline_pipeline-stopping-event-emitted.json",
    "14_doc_codepipeline_pipeline-succeeded-event-emitted.json",
    "15_doc_codepipeline_pipeline-succeeded-event-processed.json",
    "16_doc_codepipeline_pipeline-failed-event-emitted.json",
];
const STARTED: &str = "11_doc_codepipeline_pipeline-started-event-emitted.json";
const SUCCEEDED: &str = "14_doc_codepipeline_pipeline-succeeded-event-emitted.json";
const FAILED: &str = "16_doc_codepipeline_pipeline-failed-event-emitted.json";

fn corpus_text(name: &str) -> String {
    std::fs::read_to_string(corpus().join("events").join(name)).expect("corpus event")
}

/// A corpus sample about execution `execution_id`.
fn sample(name: &str, execution_id: &str) -> Value {
    let mut event: Value = serde_json::from_str(&corpus_text(name)).expect("valid JSON");
    event["detail"]["execution-id"] = json!(execution_id);
    event
}

/// A source revision through a CodeConnections connection to GitHub.
fn connection_revision() -> Value {
    json!({
        "name": "SourceArtifact",
        "revisionId": SHA,
        "revisionSummary": "{\"ProviderType\":\"GitHub\",\"CommitMessage\":\"Update README.md\"}",
        "revisionUrl": format!(
            "https://us-east-1.console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn=arn:aws:codeconnections:us-east-1:123456789012:connection/4dde5c82-51d6-4ea9-918e-03aed6972ff3&referenceType=COMMIT&FullRepositoryId=Codertocat%2FHello-World&Commit={SHA}"
        ),
    })
}

/// A source revision from an S3 bucket: no commit.
fn s3_revision() -> Value {
    json!({
        "name": "SourceArtifact",
        "revisionId": "3c1d4a3f5b7e9d2c1a0b9c8d7e6f5a4b",
        "revisionSummary": "source.zip uploaded by the release job",
    })
}

struct World {
    local: LocalStack,
    github: MockServer,
    codepipeline: MockServer,
    deps: Deps,
}

impl World {
    async fn start() -> World {
        let local = LocalStack::start(DEV_CONFIG).await;
        let github = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path_regex("^/repos/[^/]+/[^/]+/statuses/[0-9a-f]{40}$"))
            .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
            .mount(&github)
            .await;
        let codepipeline = MockServer::start().await;
        let mut deps = stack::build_events_settings(&[("GITHUB_API_URL", &github.uri())])
            .expect("settings")
            .deps(&local.sdk);
        let stub = stack::sdk_config(&codepipeline.uri()).await;
        deps.codepipeline = aws_sdk_codepipeline::Client::new(&stub).into();
        World {
            local,
            github,
            codepipeline,
            deps,
        }
    }

    /// CodePipeline answers GetPipelineExecution for `execution_id`.
    async fn execution(
        &self,
        execution_id: &str,
        status: &str,
        status_summary: Option<&str>,
        revisions: Vec<Value>,
    ) {
        let mut execution = json!({
            "pipelineName": PIPELINE,
            "pipelineVersion": 3,
            "pipelineExecutionId": execution_id,
            "status": status,
            "artifactRevisions": revisions,
        });
        if let Some(summary) = status_summary {
            execution["statusSummary"] = json!(summary);
        }
        Mock::given(method("POST"))
            .and(header("x-amz-target", GET_EXECUTION))
            .and(body_json(json!({
                "pipelineName": PIPELINE,
                "pipelineExecutionId": execution_id,
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/x-amz-json-1.1")
                    .set_body_json(json!({ "pipelineExecution": execution })),
            )
            .mount(&self.codepipeline)
            .await;
    }

    async fn handle(&self, event: &Value) -> Report {
        handle_event(&self.deps, event).await.expect("handled")
    }

    /// The statuses GitHub received, in order, as (path, JSON body).
    async fn statuses(&self) -> Vec<(String, Value)> {
        self.github
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().contains("/statuses/"))
            .map(|r| {
                (
                    r.url.path().to_owned(),
                    serde_json::from_slice(&r.body).expect("JSON body"),
                )
            })
            .collect()
    }
}

fn console_url(region: &str, execution_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{PIPELINE}/executions/{execution_id}/timeline?region={region}"
    )
}

fn posted(state: StatusState) -> Report {
    Report {
        posted: Some(state),
        ..Report::default()
    }
}

fn unchanged(why: &'static str) -> Report {
    Report {
        unchanged: Some(why),
        ..Report::default()
    }
}

#[test]
fn every_corpus_execution_event_reads_and_the_broken_one_does_not_parse() {
    for name in EXECUTION_EVENTS {
        let event: Value = serde_json::from_str(&corpus_text(name)).expect(name);
        let e = parse_event(&event).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(e.pipeline, PIPELINE, "{name}");
        assert!(!e.execution_id.is_empty() && !e.region.is_empty(), "{name}");
    }
    let states: Vec<ExecutionState> = [STARTED, SUCCEEDED, FAILED]
        .iter()
        .map(|n| parse_event(&sample(n, "x")).expect(n).state)
        .collect();
    assert_eq!(
        states,
        [
            ExecutionState::Started,
            ExecutionState::Succeeded,
            ExecutionState::Failed
        ]
    );
    let broken = "17_doc_codepipeline_pipeline-failed-event-processed.json";
    assert!(serde_json::from_str::<Value>(&corpus_text(broken)).is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn an_execution_goes_pending_then_success_once_and_never_back() {
    let logs = capture_logs();
    let world = World::start().await;
    let id = "5f0e1d2c-0000-4000-8000-00000000a001";
    world
        .execution(id, "Succeeded", None, vec![connection_revision()])
        .await;

    assert_eq!(
        world.handle(&sample(STARTED, id)).await,
        posted(StatusState::Pending)
    );
    assert_eq!(
        world.handle(&sample(SUCCEEDED, id)).await,
        posted(StatusState::Success)
    );

    let statuses = world.statuses().await;
    let status_path = format!("/repos/{REPO}/statuses/{SHA}");
    let url = console_url("us-east-1", id);
    assert_eq!(
        statuses,
        vec![
            (
                status_path.clone(),
                json!({
                    "state": "pending",
                    "context": "gantry/pipeline/myPipeline",
                    "description": "pipeline running",
                    "target_url": url,
                })
            ),
            (
                status_path,
                json!({
                    "state": "success",
                    "context": "gantry/pipeline/myPipeline",
                    "description": "pipeline succeeded",
                    "target_url": url,
                })
            ),
        ]
    );
    let requests = world.github.received_requests().await.unwrap_or_default();
    assert_eq!(
        requests[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );

    // EventBridge delivers again; a late STARTED; another final state.
    assert_eq!(
        world.handle(&sample(SUCCEEDED, id)).await,
        unchanged("already posted")
    );
    assert_eq!(
        world.handle(&sample(STARTED, id)).await,
        unchanged("already finished; never back to pending")
    );
    assert_eq!(
        world.handle(&sample(FAILED, id)).await,
        unchanged("already posted")
    );
    assert_eq!(world.statuses().await.len(), 2, "nothing posted twice");

    // One line per status posted, with what it was about; never the token.
    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.to_string().contains(id) && l.to_string().contains("pipeline status posted"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in &lines {
        let line = line.to_string();
        for field in [PIPELINE, REPO, SHA, "\"state\""] {
            assert!(line.contains(field), "{field} missing in {line}");
        }
    }
    assert!(!text.contains(GITHUB_TOKEN));
    world.local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_execution_says_why_and_a_stopping_one_waits() {
    let world = World::start().await;
    let id = "5f0e1d2c-0000-4000-8000-00000000a002";
    world
        .execution(
            id,
            "Failed",
            Some("  Action Deploy failed:\n  Deployment d-EXAMPLE failed  "),
            vec![s3_revision(), connection_revision()],
        )
        .await;

    let mut stopping: Value = serde_json::from_str(&corpus_text(
        "13_doc_codepipeline_pipeline-stopping-event-emitted.json",
    ))
    .expect("JSON");
    stopping["detail"]["execution-id"] = json!(id);
    assert_eq!(
        world.handle(&stopping).await,
        unchanged("stopping; the state it ends in is reported")
    );
    assert_eq!(
        world.handle(&sample(FAILED, id)).await,
        posted(StatusState::Failure)
    );
    assert_eq!(
        world.statuses().await,
        vec![(
            format!("/repos/{REPO}/statuses/{SHA}"),
            json!({
                "state": "failure",
                "context": "gantry/pipeline/myPipeline",
                "description": "pipeline failed: Action Deploy failed: Deployment d-EXAMPLE failed",
                "target_url": console_url("us-west-2", id),
            })
        )]
    );
    world.local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_source_that_is_not_github_gets_no_status_and_a_refusal_is_retried() {
    let world = World::start().await;
    let s3 = "5f0e1d2c-0000-4000-8000-00000000a003";
    world
        .execution(s3, "InProgress", None, vec![s3_revision()])
        .await;
    assert_eq!(
        world.handle(&sample(STARTED, s3)).await,
        unchanged("pipeline source is not a GitHub commit")
    );
    assert_eq!(
        world.handle(&sample(SUCCEEDED, s3)).await,
        unchanged("pipeline source is not a GitHub commit")
    );
    assert!(world.statuses().await.is_empty());

    // CodePipeline does not know the execution: an error, so EventBridge
    // retries (and the dead-letter queue keeps it at the end).
    let unknown = "5f0e1d2c-0000-4000-8000-00000000a004";
    Mock::given(method("POST"))
        .and(header("x-amz-target", GET_EXECUTION))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(json!({
                    "__type": "PipelineExecutionNotFoundException",
                    "message": "Pipeline execution not found",
                })),
        )
        .with_priority(10)
        .mount(&world.codepipeline)
        .await;
    let err = handle_event(&world.deps, &sample(SUCCEEDED, unknown))
        .await
        .expect_err("an error");
    assert!(
        matches!(&err, HandlerError::Pipeline { reason, .. } if reason.contains("PipelineExecutionNotFoundException")),
        "{err}"
    );

    // GitHub refuses a status: the claim is given back, and the retry posts.
    let id = "5f0e1d2c-0000-4000-8000-00000000a005";
    world
        .execution(id, "Succeeded", None, vec![connection_revision()])
        .await;
    world.github.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&world.github)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/{REPO}/statuses/{SHA}")))
        .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
        .with_priority(2)
        .mount(&world.github)
        .await;
    assert!(
        handle_event(&world.deps, &sample(SUCCEEDED, id))
            .await
            .is_err()
    );
    assert_eq!(
        world.handle(&sample(SUCCEEDED, id)).await,
        posted(StatusState::Success)
    );
    assert_eq!(
        world.statuses().await.len(),
        2,
        "the refused one, then the retry"
    );
    world.local.moto.stop().await;
}

/// `PipelineEventsRule`: only with PipelineNames, those pipelines'
/// execution changes to build-events, retried, then to its dead-letter queue
/// (whose policy admits the rule only when it exists).
#[test]
fn the_template_routes_the_named_pipelines_to_build_events() {
    let text = std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
    let limits = yaml::Limits {
        max_bytes: 4 * 1024 * 1024,
        ..yaml::Limits::default()
    };
    let template = yaml::parse(&text, limits)
        .expect("parses")
        .expect("not empty");
    let resources = template.get("Resources").expect("Resources");
    let rule = resources
        .get("PipelineEventsRule")
        .expect("PipelineEventsRule");
    assert_eq!(
        rule.get("Condition").and_then(Node::as_str),
        Some("HasPipelines")
    );
    let properties = rule.get("Properties").expect("Properties");
    assert!(
        properties.get("EventBusName").is_none(),
        "CodePipeline's events are on the default bus"
    );
    let pattern = properties.get("EventPattern").expect("EventPattern");
    assert_eq!(
        pattern.get("source").map(Node::to_json),
        Some(json!(["aws.codepipeline"]))
    );
    assert_eq!(
        pattern.get("detail-type").map(Node::to_json),
        Some(json!(["CodePipeline Pipeline Execution State Change"]))
    );
    let pipeline = pattern
        .get("detail")
        .and_then(|d| d.get("pipeline"))
        .expect("detail.pipeline");
    let tag = pipeline.tag.as_deref().or(match &pipeline.value {
        Yaml::Scalar { tag, .. } => tag.as_deref(),
        _ => None,
    });
    assert_eq!(
        (tag, pipeline.as_str()),
        (Some("Ref"), Some("PipelineNames"))
    );
    let target = |id: &str| {
        resources
            .get(id)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get("Targets"))
            .map(Node::to_json)
            .and_then(|t| t.get(0).cloned())
            .expect("a target")
    };
    let ours = target("PipelineEventsRule");
    let theirs = target("CodeBuildEventsRule");
    assert_eq!(ours["RetryPolicy"], theirs["RetryPolicy"]);
    assert_eq!(ours["DeadLetterConfig"], theirs["DeadLetterConfig"]);
    assert_eq!(ours["Arn"], theirs["Arn"]);
    let permission = resources
        .get("PipelineEventsInvokePermission")
        .expect("its invoke permission");
    assert_eq!(
        permission.get("Condition").and_then(Node::as_str),
        Some("HasPipelines")
    );
    assert!(text.contains("!If [HasPipelines, !GetAtt PipelineEventsRule.Arn, !Ref AWS::NoValue]"));
    assert!(text.contains("codepipeline:GetPipelineExecution"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_stage_retried_to_success_turns_the_commit_green() {
    let world = World::start().await;
    let id = "5f0e1d2c-0000-4000-8000-00000000a009";
    world
        .execution(id, "Succeeded", None, vec![connection_revision()])
        .await;
    assert_eq!(
        world.handle(&sample(FAILED, id)).await,
        posted(StatusState::Failure)
    );
    // A late STARTED does not reopen it…
    assert_eq!(
        world.handle(&sample(STARTED, id)).await,
        unchanged("already finished; never back to pending")
    );
    // …but a retried stage does: RESUMED, then the new outcome.
    let mut resumed = sample(STARTED, id);
    resumed["detail"]["state"] = json!("RESUMED");
    assert_eq!(world.handle(&resumed).await, posted(StatusState::Pending));
    assert_eq!(
        world.handle(&sample(SUCCEEDED, id)).await,
        posted(StatusState::Success)
    );
    let states: Vec<Value> = world
        .statuses()
        .await
        .into_iter()
        .map(|(_, body)| body["state"].clone())
        .collect();
    assert_eq!(
        states,
        vec![json!("failure"), json!("pending"), json!("success")]
    );
    world.local.moto.stop().await;
}
