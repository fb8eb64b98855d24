//! The functions, their settings and their events: the same for every run.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::stub::{ACCOUNT, REGION, State, Stub};
use crate::{Function, HarnessError};

const BUCKET: &str = "gantry-artifacts";
const WEBHOOK_SECRET: &str = "coldstart-webhook-secret";
const PROJECT: &str = "gantry-dev";
const PIPELINE_KEY: &str = "pipeline/source.zip";
/// The build page's key (hex), as the first signed link would make it.
const PAGE_KEY: &str = "c01d5a9e0000000000000000000000000000000000000000000000000000c01d";

/// gantry.yaml for the run: every branch builds, the build needs one
/// secret (checked by inject-secrets), and a Slack route posts every result.
const CONFIG: &str = "\
version: 1
repositories:
  - name: \"**\"
    project: gantry-dev
    push:
      branches: [\"**\"]
    secrets:
      DOCKER_PASSWORD: /gantry/dev/docker/password
    notifications:
      - provider: slack
        url-parameter: /gantry/notify/slack
        when: always
";

/// The environment Lambda gives a `provided.al2023` function, pointed at
/// the loopback runtime API and stub.
pub fn lambda_env(
    name: &str,
    memory: u32,
    runtime_api: &str,
    stub: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ("TZ", ":UTC".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.into()),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("gantry-{name}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/gantry-{name}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]0".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("_HANDLER", "bootstrap".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("AWS_ACCESS_KEY_ID", "AKIDCOLDSTART".into()),
        ("AWS_SECRET_ACCESS_KEY", "coldstart-secret-key".into()),
        ("AWS_SESSION_TOKEN", "coldstart-session-token".into()),
        ("AWS_ENDPOINT_URL", stub.into()),
    ]
}

/// The eight functions in the chain's order (the build page after the builds it shows), each with the settings
/// template.yaml gives it: its environment, and its `Timeout`, from which
/// each invocation's deadline is set (the functions claim nothing they
/// have no time left for).
/// The empty function (`bench/empty`): `lambda_runtime` answering `{}`.
pub const FLOOR: &str = "empty";

pub fn functions(stub: &str) -> Vec<Function> {
    let common = |extra: &[(&'static str, &str)]| {
        extra
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let github = stub.to_owned();
    vec![
        // The floor, first: every figure after it is read against it.
        Function {
            name: FLOOR,
            timeout: Duration::from_secs(10),
            env: Vec::new(),
        },
        Function {
            name: "webhook",
            timeout: Duration::from_secs(10),
            env: common(&[
                ("WEBHOOK_SECRET_PARAMETER", "/gantry/webhook-secret"),
                ("CONFIG_PARAMETER", "/gantry/config"),
                ("DELIVERY_BUCKET", BUCKET),
                ("EVENT_BUS_NAME", "gantry"),
            ]),
        },
        Function {
            name: "validate-buildspec",
            timeout: Duration::from_secs(120),
            env: common(&[
                ("GITHUB_API_URL", &github),
                ("GITHUB_TOKEN_PARAMETER", "/gantry/github-token"),
                ("ARTIFACT_BUCKET", BUCKET),
                ("EVENT_BUS_NAME", "gantry"),
            ]),
        },
        Function {
            name: "inject-secrets",
            timeout: Duration::from_secs(30),
            env: common(&[
                ("CONFIG_PARAMETER", "/gantry/config"),
                ("SECRETS_PATH_PREFIX", "/gantry/"),
                ("ARTIFACT_BUCKET", BUCKET),
                ("EVENT_BUS_NAME", "gantry"),
            ]),
        },
        Function {
            name: "start-build",
            timeout: Duration::from_secs(300),
            env: common(&[
                ("ARTIFACT_BUCKET", BUCKET),
                ("EVENT_BUS_NAME", "gantry"),
                (
                    "UNTRUSTED_SERVICE_ROLE_ARN",
                    "arn:aws:iam::123456789012:role/gantry-untrusted-build",
                ),
                ("START_RETRY_ATTEMPTS", "5"),
                ("START_RETRY_BASE_MS", "5000"),
            ]),
        },
        Function {
            name: "build-events",
            timeout: Duration::from_secs(300),
            env: common(&[
                ("GITHUB_API_URL", &github),
                ("GITHUB_TOKEN_PARAMETER", "/gantry/github-token"),
                ("CONFIG_PARAMETER", "/gantry/config"),
                ("ARTIFACT_BUCKET", BUCKET),
            ]),
        },
        Function {
            name: "reconcile",
            timeout: Duration::from_secs(300),
            env: common(&[
                ("GITHUB_API_URL", &github),
                ("GITHUB_TOKEN_PARAMETER", "/gantry/github-token"),
                ("CONFIG_PARAMETER", "/gantry/config"),
                ("ARTIFACT_BUCKET", BUCKET),
                ("PROJECTS", PROJECT),
                ("BUILDS_PER_PROJECT", "50"),
            ]),
        },
        Function {
            name: "schedule",
            timeout: Duration::from_secs(120),
            env: common(&[
                ("GITHUB_API_URL", &github),
                ("GITHUB_TOKEN_PARAMETER", "/gantry/github-token"),
                ("CONFIG_PARAMETER", "/gantry/config"),
                ("ARTIFACT_BUCKET", BUCKET),
                ("EVENT_BUS_NAME", "gantry"),
            ]),
        },
        Function {
            name: "build-page",
            timeout: Duration::from_secs(15),
            env: common(&[
                ("PAGE_KEY_PARAMETER", "/gantry/page-key"),
                ("ARTIFACT_BUCKET", BUCKET),
            ]),
        },
        Function {
            name: "pipeline-action",
            timeout: Duration::from_secs(60),
            env: Vec::new(),
        },
    ]
}

/// What the harness reads from the corpus once.
pub struct Fixtures {
    push: Value,
    buildspec: String,
    state_change: Value,
    job: Value,
}

fn read(path: &Path) -> Result<String, HarnessError> {
    std::fs::read_to_string(path).map_err(|e| HarnessError::Io(path.display().to_string(), e))
}

fn parse(path: &Path) -> Result<Value, HarnessError> {
    serde_json::from_str(&read(path)?)
        .map_err(|e| HarnessError::Input(format!("{}: {e}", path.display())))
}

/// `X-Hub-Signature-256` as GitHub computes it.
fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn envelope(id: usize, detail_type: &str, source: &str, detail: &Value) -> Vec<u8> {
    json!({
        "version": "0",
        "id": format!("00000000-0000-4000-9000-{id:012}"),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": "2026-11-27T03:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    })
    .to_string()
    .into_bytes()
}

impl Fixtures {
    pub fn load(corpus: &Path) -> Result<Fixtures, HarnessError> {
        Ok(Fixtures {
            push: parse(&corpus.join("webhooks/07_push__with-new-branch.payload.json"))?,
            buildspec: read(&corpus.join("buildspecs/001.yml"))?,
            state_change: parse(
                &corpus.join("events/35_recorded_codebuild_state_change_SUCCEEDED.json"),
            )?,
            job: parse(&corpus.join("events/06_rust_example-codepipeline_job-event.json"))?,
        })
    }

    /// The stub's starting state: the parameters, the buildspec GitHub
    /// serves, and the pipeline's source artifact.
    pub fn stub_state(&self) -> State {
        let mut state = State {
            buildspec: self.buildspec.clone(),
            ..State::default()
        };
        for (name, value) in [
            ("/gantry/webhook-secret", WEBHOOK_SECRET),
            ("/gantry/config", CONFIG),
            ("/gantry/github-token", "ghp_coldstartTOKEN"),
            ("/gantry/dev/docker/password", "coldstart-docker-password"),
            ("/gantry/page-key", PAGE_KEY),
        ] {
            state.parameters.insert(name.into(), value.into());
        }
        // Filled in once the stub knows its address.
        state
            .parameters
            .insert("/gantry/notify/slack".into(), String::new());
        state
            .objects
            .insert(format!("{BUCKET}/{PIPELINE_KEY}"), self.artifact());
        state
    }

    /// The source artifact CodePipeline hands the action: a zip with the
    /// buildspec at its root.
    fn artifact(&self) -> Vec<u8> {
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        if zip.start_file("buildspec.yml", options).is_ok() {
            let _ = zip.write_all(self.buildspec.as_bytes());
        }
        let _ = zip.finish();
        buffer.into_inner()
    }

    /// `count` events for `function`. The later functions' events are the
    /// ones the earlier functions put on the stub's bus.
    pub fn inputs(
        &self,
        function: &str,
        count: usize,
        stub: &Stub,
    ) -> Result<Vec<Vec<u8>>, HarnessError> {
        stub.state().parameters.insert(
            "/gantry/notify/slack".into(),
            format!("{}/chat/slack", stub.url()),
        );
        let from_bus = |detail_type: &str| -> Result<Vec<Vec<u8>>, HarnessError> {
            let details = stub.events(detail_type);
            if details.len() < count {
                return Err(HarnessError::Input(format!(
                    "{function} needs {count} `{detail_type}` events; the functions before it published {}",
                    details.len()
                )));
            }
            Ok(details
                .iter()
                .take(count)
                .enumerate()
                .map(|(i, d)| envelope(i, detail_type, "gantry", d))
                .collect())
        };
        match function {
            "webhook" => Ok((0..count).map(|i| self.delivery(i)).collect()),
            "validate-buildspec" => from_bus("Build Requested"),
            "inject-secrets" => from_bus("Buildspec Validated"),
            "start-build" => from_bus("Secrets Resolved"),
            "build-events" => {
                let builds = stub.state().builds.clone();
                if builds.len() < count {
                    return Err(HarnessError::Input(format!(
                        "build-events needs {count} builds; start-build started {}",
                        builds.len()
                    )));
                }
                Ok(builds
                    .iter()
                    .take(count)
                    .enumerate()
                    .map(|(i, b)| self.state_change_for(i, b))
                    .collect())
            }
            "reconcile" => Ok((0..count)
                .map(|i| {
                    let mut e: Value = serde_json::from_slice(&envelope(
                        i,
                        "Scheduled Event",
                        "aws.events",
                        &json!({}),
                    ))
                    .unwrap_or_default();
                    e["resources"] = json!([format!(
                        "arn:aws:events:{REGION}:{ACCOUNT}:rule/gantry-reconcile"
                    )]);
                    e.to_string().into_bytes()
                })
                .collect()),
            // The every-minute tick; the harness's configuration has no
            // schedules, so each reads gantry.yaml and finds none due.
            "schedule" => Ok((0..count)
                .map(|i| {
                    let mut e: Value = serde_json::from_slice(&envelope(
                        i,
                        "Scheduled Event",
                        "aws.events",
                        &json!({}),
                    ))
                    .unwrap_or_default();
                    e["resources"] = json!([format!(
                        "arn:aws:events:{REGION}:{ACCOUNT}:rule/gantry-schedule"
                    )]);
                    e.to_string().into_bytes()
                })
                .collect()),
            "build-page" => {
                let builds = stub.state().builds.clone();
                if builds.len() < count {
                    return Err(HarnessError::Input(format!(
                        "build-page needs {count} builds; start-build started {}",
                        builds.len()
                    )));
                }
                builds
                    .iter()
                    .take(count)
                    .enumerate()
                    .map(|(i, b)| page_request(i, b["id"].as_str().unwrap_or_default()))
                    .collect()
            }
            "pipeline-action" => Ok((0..count).map(|i| self.job_for(i)).collect()),
            FLOOR => Ok((0..count)
                .map(|i| format!("{{\"n\":{i}}}").into_bytes())
                .collect()),
            other => Err(HarnessError::Input(format!("unknown function {other}"))),
        }
    }

    /// The i-th delivery: the corpus push on its own branch and commit,
    /// signed, as a function URL request.
    fn delivery(&self, i: usize) -> Vec<u8> {
        let mut push = self.push.clone();
        let sha = format!("{:040x}", 0xc01d_0000_u64 + i as u64);
        push["ref"] = json!(format!("refs/heads/coldstart-{i}"));
        push["after"] = json!(sha);
        push["head_commit"]["id"] = json!(sha);
        let body = push.to_string();
        let delivery = format!("00000000-0000-4000-8000-{i:012}");
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/",
            "rawQueryString": "",
            "headers": {
                "content-type": "application/json",
                "host": "abcdefgh.lambda-url.us-east-1.on.aws",
                "user-agent": "GitHub-Hookshot/7a3d5c1",
                "x-github-delivery": delivery,
                "x-github-event": "push",
                "x-github-hook-id": "1",
                "x-hub-signature-256": sign(WEBHOOK_SECRET.as_bytes(), body.as_bytes()),
            },
            "requestContext": {
                "accountId": "anonymous",
                "apiId": "abcdefgh",
                "domainName": "abcdefgh.lambda-url.us-east-1.on.aws",
                "domainPrefix": "abcdefgh",
                "http": {
                    "method": "POST",
                    "path": "/",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "140.82.115.1",
                    "userAgent": "GitHub-Hookshot/7a3d5c1"
                },
                "requestId": delivery,
                "routeKey": "$default",
                "stage": "$default",
                "time": "27/Nov/2026:03:00:00 +0000",
                "timeEpoch": 1_795_000_000_000_u64
            },
            "body": body,
            "isBase64Encoded": false
        })
        .to_string()
        .into_bytes()
    }

    /// CodeBuild's SUCCEEDED state change (from the corpus) for build `b`.
    fn state_change_for(&self, i: usize, build: &Value) -> Vec<u8> {
        let mut e = self.state_change.clone();
        e["id"] = json!(format!("00000000-0000-4000-a000-{i:012}"));
        e["resources"] = json!([build["arn"]]);
        let d = &mut e["detail"];
        d["build-id"] = build["arn"].clone();
        d["project-name"] = json!(PROJECT);
        d["additional-information"]["environment"]["environment-variables"] =
            build["environment"]["environmentVariables"].clone();
        e.to_string().into_bytes()
    }

    /// The corpus job event, with its own job id and the stub's artifact.
    fn job_for(&self, i: usize) -> Vec<u8> {
        let mut e = self.job.clone();
        let job = &mut e["CodePipeline.job"];
        job["id"] = json!(format!("00000000-0000-4000-b000-{i:012}"));
        job["data"]["inputArtifacts"][0]["location"]["s3Location"] =
            json!({ "bucketName": BUCKET, "objectKey": PIPELINE_KEY });
        job["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
            json!("buildspec.yml");
        e.to_string().into_bytes()
    }
}

/// The i-th GET of build `id`'s page, through its function URL, with the
/// link a status would carry.
fn page_request(i: usize, id: &str) -> Result<Vec<u8>, HarnessError> {
    use gantry_core::page::link::{self, Expiry, PageKey, Target};
    let key = PageKey::from_hex(PAGE_KEY).map_err(|e| HarnessError::Input(e.to_string()))?;
    let target = Target::Build(gantry_core::ids::BuildId::new(id));
    let path = target.path();
    let query = link::query(&key, &target, Expiry::At(4_000_000_000));
    let request_id = format!("00000000-0000-4000-c000-{i:012}");
    Ok(json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query.trim_start_matches('?'),
        "headers": {
            "host": "pagepage.lambda-url.us-east-1.on.aws",
            "user-agent": "Mozilla/5.0"
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "pagepage",
            "domainName": "pagepage.lambda-url.us-east-1.on.aws",
            "domainPrefix": "pagepage",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "Mozilla/5.0"
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:03:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_u64
        },
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes())
}

/// Whether a function's answer says it did its work.
pub fn check_response(function: &str, body: &[u8]) -> Result<(), String> {
    if function == FLOOR {
        return if body == b"{}" {
            Ok(())
        } else {
            Err(format!("answered {}", String::from_utf8_lossy(body)))
        };
    }
    if function == "build-page" {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
        let status = v["statusCode"].as_i64().unwrap_or_default();
        let page = v["body"].as_str().unwrap_or_default();
        return if status == 200 && page.contains("Log") {
            Ok(())
        } else {
            Err(format!(
                "build-page answered {status}: {}",
                page.get(..300).unwrap_or(page)
            ))
        };
    }
    if function != "webhook" {
        return Ok(());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let status = v["statusCode"].as_i64().unwrap_or_default();
    let answer: Value = v["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    if status == 202 && answer["outcome"] == "accepted" {
        Ok(())
    } else {
        Err(format!("webhook answered {status}: {answer}"))
    }
}

/// After all of a function's runs: did it do, once each, what it is for?
pub fn check_effects(function: &str, count: usize, stub: &Stub) -> Result<(), String> {
    let state = stub.state();
    let events = |t: &str| state.events.iter().filter(|e| e.detail_type == t).count();
    let (what, seen) = match function {
        "webhook" => ("Build Requested events", events("Build Requested")),
        "validate-buildspec" => ("Buildspec Validated events", events("Buildspec Validated")),
        "inject-secrets" => ("Secrets Resolved events", events("Secrets Resolved")),
        "start-build" => ("builds started", state.builds.len()),
        "build-events" => ("commit statuses", state.statuses),
        "pipeline-action" => (
            "PutJobSuccessResult calls",
            state
                .job_results
                .iter()
                .filter(|r| *r == "PutJobSuccessResult")
                .count(),
        ),
        _ => return Ok(()),
    };
    if seen == count && (function != "build-events" || state.chat_messages == count) {
        Ok(())
    } else {
        Err(format!(
            "expected {count} {what}, saw {seen} (chat messages: {})",
            state.chat_messages
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_githubs() {
        // GitHub's documented example: secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn a_webhook_answer_other_than_accepted_is_a_failure() {
        let ok = json!({"statusCode": 202, "body": "{\"outcome\":\"accepted\"}"}).to_string();
        let refused = json!({"statusCode": 401, "body": "{\"outcome\":\"refused\"}"}).to_string();
        assert!(check_response("webhook", ok.as_bytes()).is_ok());
        assert!(check_response("webhook", refused.as_bytes()).is_err());
    }
}
