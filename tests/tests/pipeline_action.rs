//! The CodePipeline invoke action: the artifact path against the moto
//! server's S3, the job-result client against a loopback server speaking
//! CodePipeline's JSON API (moto does not implement job results), driven by
//! the real job events of the corpus.

use std::io::Write;
use std::time::Duration;

use aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent;
use gantry_e2e::{LocalStack, capture_logs, corpus};
use gantry_pipeline_action::{Deps, Verdict, handle, handle_with};
use gantry_shared::config::DEV_CONFIG;
use tokio::time::Instant;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const BUCKET: &str = "codepipeline-us-east-1-123456789012";
const VALID: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";
const INVALID: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo: hi there\n";
/// The valid job events of the corpus (29 is the docs' broken JSON).
const JOB_EVENTS: &[&str] = &[
    "06_rust_example-codepipeline_job-event.json",
    "08_go_codepipeline-job-event.json",
    "30_powertools_codePipelineEvent.json",
    "31_powertools_codePipelineEventData.json",
    "32_powertools_codePipelineEventEmptyUserParameters.json",
    "33_powertools_codePipelineEventWithEncryptionKey.json",
];

fn read_event(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(corpus().join("events").join(name)).expect("corpus event");
    serde_json::from_str(&text).expect("valid JSON")
}

fn zip(files: &[(&str, &str)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in files {
        out.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        out.write_all(text.as_bytes()).expect("zip write");
    }
    out.finish().expect("zip").into_inner()
}

struct Rig {
    local: LocalStack,
    stub: MockServer,
    deps: Deps,
}

async fn rig() -> Rig {
    let local = LocalStack::start(DEV_CONFIG).await;
    let s3 = aws_sdk_s3::Client::new(&local.sdk);
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("artifact bucket");
    let stub = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string("{}"),
        )
        .mount(&stub)
        .await;
    let codepipeline = aws_sdk_codepipeline::Client::from_conf(
        aws_sdk_codepipeline::config::Builder::from(&local.sdk)
            .endpoint_url(stub.uri())
            .build(),
    );
    let deps = Deps {
        sdk: local.sdk.clone(),
        codepipeline,
    };
    Rig { local, stub, deps }
}

impl Rig {
    /// A corpus job event pointed at `zip` uploaded to the moto bucket.
    async fn job(
        &self,
        corpus_event: &str,
        zip: Vec<u8>,
        user_parameters: Option<&str>,
    ) -> CodePipelineJobEvent {
        let key = format!(
            "{}/SourceArti/abc.zip",
            corpus_event.trim_end_matches(".json")
        );
        aws_sdk_s3::Client::new(&self.local.sdk)
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(zip.into())
            .send()
            .await
            .expect("upload artifact");
        let mut event = read_event(corpus_event);
        let data = &mut event["CodePipeline.job"]["data"];
        data["inputArtifacts"][0]["location"]["s3Location"] =
            serde_json::json!({ "bucketName": BUCKET, "objectKey": key });
        let config = &mut data["actionConfiguration"]["configuration"];
        match user_parameters {
            Some(p) => config["UserParameters"] = p.into(),
            None => {
                config.as_object_mut().map(|c| c.remove("UserParameters"));
            }
        }
        serde_json::from_value(event).expect("a CodePipeline job event")
    }

    /// The one job result the stub received: (operation, JSON body).
    async fn result(&self) -> (String, serde_json::Value) {
        let requests = self.stub.received_requests().await.unwrap_or_default();
        assert_eq!(requests.len(), 1, "exactly one job result is reported");
        let target = requests[0]
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            target,
            serde_json::from_slice(&requests[0].body).expect("JSON body"),
        )
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[test]
fn every_corpus_job_event_deserialises_and_the_broken_one_does_not() {
    for name in JOB_EVENTS {
        let event: CodePipelineJobEvent =
            serde_json::from_value(read_event(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(event.code_pipeline_job.id.is_some(), "{name}");
        assert!(
            !event.code_pipeline_job.data.input_artifacts.is_empty(),
            "{name}"
        );
    }
    let broken =
        std::fs::read_to_string(corpus().join("events/29_doc_codepipeline_job_event.json"))
            .expect("file");
    assert!(serde_json::from_str::<CodePipelineJobEvent>(&broken).is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn a_valid_buildspec_reports_success_with_the_digest_as_an_output_variable() {
    let logs = capture_logs();
    let rig = rig().await;
    for name in JOB_EVENTS {
        rig.stub.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .mount(&rig.stub)
            .await;
        let event = rig
            .job(
                name,
                zip(&[("buildspec.yml", VALID), ("src/main.rs", "fn main() {}")]),
                None,
            )
            .await;
        let job_id = event.code_pipeline_job.id.clone().unwrap_or_default();
        let verdict = handle(&rig.deps, event, later()).await.expect("reported");
        let Verdict::Success { digest, .. } = &verdict else {
            panic!("{name}: {verdict:?}")
        };
        let (target, body) = rig.result().await;
        assert_eq!(
            target, "CodePipeline_20150709.PutJobSuccessResult",
            "{name}"
        );
        assert_eq!(body["jobId"], job_id.as_str());
        assert_eq!(body["outputVariables"]["BUILDSPEC_DIGEST"], digest.as_str());
        assert_eq!(body["outputVariables"]["BUILDSPEC_PATH"], "buildspec.yml");
        assert!(
            body["executionDetails"]["summary"]
                .as_str()
                .is_some_and(|s| s.contains("valid buildspec")),
            "{body}"
        );
    }
    let text = logs.text();
    for name in JOB_EVENTS {
        let creds = &read_event(name)["CodePipeline.job"]["data"]["artifactCredentials"];
        for field in ["secretAccessKey", "sessionToken"] {
            if let Some(secret) = creds[field].as_str() {
                assert!(!text.contains(secret), "{field} of {name} reached the logs");
            }
        }
    }
    rig.local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_invalid_buildspec_reports_failure_with_line_and_column() {
    let rig = rig().await;
    let event = rig
        .job(
            JOB_EVENTS[2],
            zip(&[("ci/buildspec.yml", INVALID)]),
            Some(r#"{"buildspec": "ci/buildspec.yml"}"#),
        )
        .await;
    handle(&rig.deps, event, later()).await.expect("reported");
    let (target, body) = rig.result().await;
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");
    assert_eq!(body["failureDetails"]["type"], "JobFailed");
    let message = body["failureDetails"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("ci/buildspec.yml:5:9: error"), "{message}");
    rig.local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_plain_path_parameter_and_a_missing_file() {
    let rig = rig().await;
    let event = rig
        .job(
            JOB_EVENTS[0],
            zip(&[("buildspec.yml", VALID)]),
            Some("build/buildspec.yml"),
        )
        .await;
    let verdict = handle(&rig.deps, event, later()).await.expect("reported");
    let Verdict::Failure { message } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        message.contains("build/buildspec.yml not found in input artifact"),
        "{message}"
    );
    let (target, _) = rig.result().await;
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");
    rig.local.moto.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_or_a_deadline_still_reports_failure() {
    let rig = rig().await;
    let event = rig
        .job(JOB_EVENTS[3], zip(&[("buildspec.yml", VALID)]), None)
        .await;
    let verdict = handle_with(&rig.deps, event.clone(), later(), |_job| async {
        panic!("validator bug")
    })
    .await
    .expect("reported");
    assert!(
        matches!(&verdict, Verdict::Failure { message } if message.contains("failed unexpectedly")),
        "{verdict:?}"
    );
    let (target, _) = rig.result().await;
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");

    rig.stub.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&rig.stub)
        .await;
    // The Lambda deadline is 3.2 s away; the work would take an hour.
    let deadline = Instant::now() + Duration::from_millis(3200);
    let verdict = handle_with(&rig.deps, event, deadline, |_job| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Verdict::Failure {
            message: "unreachable".into(),
        }
    })
    .await
    .expect("reported");
    assert!(
        matches!(&verdict, Verdict::Failure { message } if message.contains("did not finish")),
        "{verdict:?}"
    );
    let (target, _) = rig.result().await;
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");
    rig.local.moto.stop().await;
}
