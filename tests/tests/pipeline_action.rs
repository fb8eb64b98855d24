//! The CodePipeline invoke action: the artifact path against the moto
//! server's S3, the job-result client against a loopback server speaking
//! CodePipeline's JSON API (moto does not implement job results), driven by
//! the real job events of the corpus.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent;
use gantry_core::config::DEV_CONFIG;
use gantry_e2e::{LocalStack, capture_logs, corpus};
use gantry_pipeline_action::{Deps, Verdict, handle, handle_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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

/// A TCP relay in front of the moto server that counts the bytes moto
/// sends back: what the function downloaded, whatever way it asked.
struct Relay {
    endpoint: String,
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    async fn start(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = async {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                        let _ = server_write.shutdown().await;
                    };
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = server_read.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Relay {
            endpoint,
            received,
            task,
        }
    }
}

struct Rig {
    local: LocalStack,
    stub: MockServer,
    deps: Deps,
    /// Between the function and S3.
    relay: Relay,
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
    let relay = Relay::start(local.moto.endpoint()).await;
    let deps = Deps {
        sdk: local.sdk.to_builder().endpoint_url(&relay.endpoint).build(),
        codepipeline,
    };
    Rig {
        local,
        stub,
        deps,
        relay,
    }
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

    /// Bytes S3 has sent the function so far, headers included.
    fn downloaded(&self) -> u64 {
        self.relay.received.load(Ordering::Relaxed)
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

/// A zip of `files` (stored, so the zip is as large as they are) with the
/// buildspec `buildspec_yml` (deflated) in the middle.
fn zip_around(files: &[(String, Vec<u8>)], buildspec_yml: &[u8]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let half = files.len() / 2;
    for (i, (name, data)) in files.iter().enumerate() {
        if i == half {
            out.start_file("buildspec.yml", zip::write::SimpleFileOptions::default())
                .expect("zip entry");
            out.write_all(buildspec_yml).expect("zip write");
        }
        out.start_file(name.as_str(), stored).expect("zip entry");
        out.write_all(data).expect("zip write");
    }
    out.finish().expect("zip").into_inner()
}

/// `count` files of `size` bytes no compressor can shrink (xorshift64).
fn filler(count: usize, size: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ i as u64;
            let mut data = Vec::with_capacity(size + 8);
            while data.len() < size {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.extend_from_slice(&x.to_le_bytes());
            }
            data.truncate(size);
            (format!("assets/blob-{i:02}.bin"), data)
        })
        .collect()
}

/// What the function may download for one buildspec, whatever the size of
/// the artifact: the zip's last 64 KiB, its directory, the entry, and the
/// requests' headers.
const READ_BUDGET: u64 = 256 * 1024;

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

/// Built with `panic = "abort"` (what cargo-lambda builds unless the
/// profile says otherwise), a panicking job ends the process inside the
/// panic hook, with nothing after it run: the hook reports the job itself.
/// Here its work is called as the hook calls it, inside the job's panicking
/// poll, which blocks the runtime: after a first job has left a pooled
/// connection on that runtime, which the report must not wait on.
#[tokio::test(flavor = "current_thread")]
async fn an_aborting_panic_still_reports_the_job_from_the_hook() {
    use gantry_pipeline_action::abort;

    let rig = rig().await;
    let event = rig
        .job(JOB_EVENTS[0], zip(&[("buildspec.yml", VALID)]), None)
        .await;
    // A job reported the usual way; its connection stays in the pool, and
    // the job is no longer in hand once its work is done.
    handle_with(&rig.deps, event, later(), |_job| async {
        Verdict::Failure {
            message: "first".into(),
        }
    })
    .await
    .expect("reported");
    assert!(
        abort::report_in_hand().is_none(),
        "no job in hand outside its work"
    );
    rig.stub.reset().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string("{}"),
        )
        .mount(&rig.stub)
        .await;

    // The Lambda deadline is 3 s away: a report stuck behind the stopped
    // runtime would miss it.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let outcome = abort::holding("job-that-panics", &rig.deps.codepipeline, deadline, async {
        abort::report_in_hand()
    })
    .await;
    outcome
        .expect("the job in hand")
        .expect("reported before the abort");
    let (target, body) = rig.result().await;
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");
    assert_eq!(body["jobId"], "job-that-panics");
    let message = body["failureDetails"]["message"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(message, abort::PANIC_MESSAGE);
    rig.local.moto.stop().await;
}

/// A source artifact over a hundred times the read budget: the buildspec
/// is read with a few ranged GETs, never by downloading the zip, so what
/// is read does not grow with the artifact (the function has 256 MB). The
/// artifact is kept at 32 MB: moto writes objects to temporary files, and
/// a bigger one tests nothing more.
#[tokio::test(flavor = "current_thread")]
async fn a_large_artifact_is_read_by_range_not_downloaded() {
    let rig = rig().await;
    let artifact = zip_around(&filler(8, 4 << 20), VALID.as_bytes());
    let size = artifact.len() as u64;
    assert!(size > 128 * READ_BUDGET, "{size}");
    let event = rig.job(JOB_EVENTS[0], artifact, None).await;
    let verdict = handle(&rig.deps, event, later()).await.expect("reported");
    assert!(
        rig.downloaded() < READ_BUDGET,
        "downloaded {} bytes of a {size}-byte artifact",
        rig.downloaded()
    );
    assert!(matches!(verdict, Verdict::Success { .. }), "{verdict:?}");
    let (target, body) = rig.result().await;
    assert_eq!(target, "CodePipeline_20150709.PutJobSuccessResult");
    assert_eq!(body["outputVariables"]["BUILDSPEC_PATH"], "buildspec.yml");
    rig.local.moto.stop().await;
}

/// A zip cut short (an interrupted upload) fails the job with the reason,
/// having read only its end.
#[tokio::test(flavor = "current_thread")]
async fn a_truncated_artifact_reports_failure_after_reading_only_its_end() {
    let rig = rig().await;
    let mut artifact = zip_around(&filler(2, 4 << 20), VALID.as_bytes());
    artifact.truncate(artifact.len() - 1000);
    let event = rig.job(JOB_EVENTS[1], artifact, None).await;
    let verdict = handle(&rig.deps, event, later()).await.expect("reported");
    assert!(
        rig.downloaded() < READ_BUDGET,
        "downloaded {} bytes",
        rig.downloaded()
    );
    let Verdict::Failure { message } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        message.contains("is not a readable zip") && message.contains("end-of-central-directory"),
        "{message}"
    );
    let (target, body) = rig.result().await;
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");
    assert!(
        body["failureDetails"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a readable zip")),
        "{body}"
    );
    rig.local.moto.stop().await;
}

/// A "buildspec" of 2 MiB (it deflates to a few KB, as a zip bomb would)
/// fails the job without being read, let alone inflated.
#[tokio::test(flavor = "current_thread")]
async fn a_buildspec_over_the_cap_reports_failure_without_reading_it() {
    let rig = rig().await;
    let huge = format!("{VALID}#{}\n", "x".repeat(2 << 20));
    let artifact = zip_around(&filler(2, 4 << 20), huge.as_bytes());
    let event = rig.job(JOB_EVENTS[2], artifact, None).await;
    let verdict = handle(&rig.deps, event, later()).await.expect("reported");
    assert!(
        rig.downloaded() < READ_BUDGET,
        "downloaded {} bytes",
        rig.downloaded()
    );
    let Verdict::Failure { message } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(
        message,
        "buildspec.yml in input artifact ArtifactName is larger than 1048576 bytes"
    );
    let (target, _) = rig.result().await;
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");
    rig.local.moto.stop().await;
}
