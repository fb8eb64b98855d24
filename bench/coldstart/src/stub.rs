//! The loopback stub that answers the functions' AWS, GitHub and chat calls,
//! so the harness times Gantry's own work and not the network.
//!
//! It keeps just enough state for the chain to be real: S3 objects (with
//! `If-None-Match: *` creates, as Gantry's claims need), SSM parameters,
//! the events put on the bus, and the CodeBuild builds started. JSON
//! protocols (SSM, EventBridge, CodeBuild, CodePipeline) are told apart by
//! `X-Amz-Target`; GitHub by `/repos/`; chat webhooks by `/chat/`; anything
//! else is S3, path-style (the SDK uses path-style for an IP endpoint).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::HarnessError;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// One event a function put on the bus.
#[derive(Debug, Clone)]
pub struct PutEvent {
    pub detail_type: String,
    pub detail: Value,
}

#[derive(Default)]
pub struct State {
    pub objects: BTreeMap<String, Vec<u8>>,
    pub parameters: HashMap<String, String>,
    pub events: Vec<PutEvent>,
    /// Builds by id (`project:uuid`), in start order.
    pub builds: Vec<Value>,
    /// GitHub `contents` answer: the buildspec at every path and ref.
    pub buildspec: String,
    pub statuses: usize,
    pub chat_messages: usize,
    pub job_results: Vec<String>,
    /// Every request answered, to count calls per invocation.
    pub requests: u64,
}

pub struct Stub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    pub async fn start(state: State) -> Result<Stub, HarnessError> {
        let state = Arc::new(Mutex::new(state));
        let (addr, task) =
            crate::loopback::serve("the stub", state.clone(), |state, req| async move {
                route(&state, req).await
            })
            .await?;
        Ok(Stub { addr, state, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a stub handler panicked; its state is
        // still what it was, and the harness reports the run anyway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The details of every event of `detail_type` put so far, in order.
    pub fn events(&self, detail_type: &str) -> Vec<Value> {
        self.state()
            .events
            .iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| e.detail.clone())
            .collect()
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r.headers_mut().insert(
        "x-amzn-requestid",
        http::HeaderValue::from_static("00000000-0000-4000-8000-000000000000"),
    );
    r
}

fn aws_json(body: Value) -> Reply {
    reply(
        StatusCode::OK,
        "application/x-amz-json-1.1",
        body.to_string(),
    )
}

fn aws_json_error(code: &str, message: &str) -> Reply {
    reply(
        StatusCode::BAD_REQUEST,
        "application/x-amz-json-1.1",
        json!({ "__type": code, "message": message }).to_string(),
    )
}

fn s3_error(status: StatusCode, code: &str) -> Reply {
    reply(
        status,
        "application/xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message><RequestId>0</RequestId></Error>"
        ),
    )
}

async fn route(state: &Mutex<State>, req: Request<hyper::body::Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, "text/plain", "unreadable body"),
    };
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    state.requests += 1;
    let path = parts.uri.path();
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return json_operation(&mut state, target, &input);
    }
    if path.starts_with("/repos/") {
        return github(&mut state, &parts.method, path);
    }
    if path.starts_with("/chat/") {
        state.chat_messages += 1;
        return reply(StatusCode::OK, "text/plain", "ok");
    }
    s3(
        &mut state,
        &parts.method,
        path,
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        body,
    )
}

fn github(state: &mut State, method: &http::Method, path: &str) -> Reply {
    if method == http::Method::GET && path.contains("/contents/") {
        return reply(
            StatusCode::OK,
            "application/vnd.github.raw+json",
            state.buildspec.clone(),
        );
    }
    if method == http::Method::POST && path.contains("/statuses/") {
        state.statuses += 1;
        return reply(
            StatusCode::CREATED,
            "application/json",
            json!({ "id": state.statuses, "state": "success" }).to_string(),
        );
    }
    reply(
        StatusCode::NOT_FOUND,
        "application/json",
        r#"{"message":"Not Found"}"#,
    )
}

fn parameter(name: &str, value: &str) -> Value {
    json!({
        "Name": name,
        "Type": "SecureString",
        "Value": value,
        "Version": 1,
        "LastModifiedDate": 1.7e9,
        "ARN": format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"),
        "DataType": "text",
    })
}

fn json_operation(state: &mut State, target: &str, input: &Value) -> Reply {
    let operation = target.rsplit('.').next().unwrap_or(target);
    match operation {
        "GetParameter" => {
            let name = input["Name"].as_str().unwrap_or_default();
            match state.parameters.get(name) {
                Some(v) => aws_json(json!({ "Parameter": parameter(name, v) })),
                None => aws_json_error("ParameterNotFound", name),
            }
        }
        "GetParameters" => {
            let (mut found, mut invalid) = (Vec::new(), Vec::new());
            for name in input["Names"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                match state.parameters.get(name) {
                    Some(v) => found.push(parameter(name, v)),
                    None => invalid.push(Value::from(name)),
                }
            }
            aws_json(json!({ "Parameters": found, "InvalidParameters": invalid }))
        }
        "PutEvents" => {
            let mut ids = Vec::new();
            for entry in input["Entries"].as_array().into_iter().flatten() {
                let detail = entry["Detail"]
                    .as_str()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null);
                state.events.push(PutEvent {
                    detail_type: entry["DetailType"].as_str().unwrap_or_default().to_owned(),
                    detail,
                });
                ids.push(json!({ "EventId": format!("event-{}", state.events.len()) }));
            }
            aws_json(json!({ "FailedEntryCount": 0, "Entries": ids }))
        }
        "StartBuild" => {
            let build = started_build(state.builds.len(), input);
            state.builds.push(build.clone());
            aws_json(json!({ "build": in_progress(&build) }))
        }
        "BatchGetBuilds" => {
            let ids: Vec<&str> = input["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let builds: Vec<Value> = state
                .builds
                .iter()
                .filter(|b| ids.iter().any(|id| b["id"] == *id || b["arn"] == *id))
                .cloned()
                .collect();
            aws_json(json!({ "builds": builds, "buildsNotFound": [] }))
        }
        "ListBuildsForProject" => {
            let ids: Vec<Value> = state.builds.iter().rev().map(|b| b["id"].clone()).collect();
            aws_json(json!({ "ids": ids }))
        }
        "StopBuild" => {
            let id = input["id"].as_str().unwrap_or_default();
            match state.builds.iter().find(|b| b["id"] == id) {
                Some(b) => aws_json(json!({ "build": b })),
                None => aws_json_error("ResourceNotFoundException", id),
            }
        }
        "PutJobSuccessResult" | "PutJobFailureResult" => {
            state.job_results.push(operation.to_owned());
            aws_json(json!({}))
        }
        // A finished build's log: a few lines, the whole stream.
        "GetLogEvents" => {
            let events: Vec<Value> = [
                "[Container] 2026/11/27 03:00:00.000000 Entering phase BUILD",
                "cargo test",
                "test result: ok. 1 passed",
                "[Container] 2026/11/27 03:00:09.000000 Phase complete: BUILD State: SUCCEEDED",
            ]
            .iter()
            .map(|m| json!({ "timestamp": 1_795_000_000_000_u64, "message": format!("{m}\n"), "ingestionTime": 1_795_000_000_100_u64 }))
            .collect();
            aws_json(json!({
                "events": events,
                "nextForwardToken": "f/00000000000000000000000000000000000000000000000000000004",
                "nextBackwardToken": "b/00000000000000000000000000000000000000000000000000000000",
            }))
        }
        _ => aws_json_error("UnknownOperationException", operation),
    }
}

/// The build as CodeBuild would show it once it has run: succeeded, with
/// the variables it was started with and the image it exported.
fn started_build(n: usize, input: &Value) -> Value {
    let project = input["projectName"].as_str().unwrap_or("gantry-dev");
    let id = format!("{project}:00000000-0000-4000-8000-{n:012}");
    let arn = format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{id}");
    let start = 1_790_000_000.0 + n as f64;
    json!({
        "id": id,
        "arn": arn,
        "buildNumber": n + 1,
        "projectName": project,
        "sourceVersion": input["sourceVersion"],
        "startTime": start,
        "endTime": start + 192.0,
        "currentPhase": "COMPLETED",
        "buildStatus": "SUCCEEDED",
        "buildComplete": true,
        "initiator": "gantry",
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": input["environmentVariablesOverride"],
            "privilegedMode": true,
        },
        "exportedEnvironmentVariables": [
            { "name": "IMAGE_URI", "value": format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/app:{n}") }
        ],
        "logs": {
            "groupName": format!("/aws/codebuild/{project}"),
            "streamName": format!("{n}"),
            "deepLink": format!("https://console.aws.amazon.com/cloudwatch/home?region={REGION}#logEvent:group=/aws/codebuild/{project};stream={n}"),
        },
        "phases": [
            { "phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": start, "endTime": start, "durationInSeconds": 0 },
            { "phaseType": "BUILD", "phaseStatus": "SUCCEEDED", "startTime": start, "endTime": start + 190.0, "durationInSeconds": 190 },
            { "phaseType": "COMPLETED", "startTime": start + 192.0 }
        ],
    })
}

fn in_progress(build: &Value) -> Value {
    let mut b = build.clone();
    b["buildStatus"] = json!("IN_PROGRESS");
    b["currentPhase"] = json!("QUEUED");
    b["buildComplete"] = json!(false);
    if let Some(o) = b.as_object_mut() {
        o.remove("endTime");
        o.remove("exportedEnvironmentVariables");
        o.remove("phases");
    }
    b
}

/// `%XX` decoding of a URI path (S3 keys arrive percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn etag(data: &[u8]) -> String {
    format!("\"{:016x}\"", data.len() as u64 * 2_654_435_761)
}

/// ListObjectsV2's answer for `prefix` in `bucket`.
fn list_objects(state: &State, bucket: &str, prefix: &str) -> String {
    let start = format!("{bucket}/{prefix}");
    let mut contents = String::new();
    let mut count = 0;
    for (k, v) in state.objects.range(start.clone()..) {
        if !k.starts_with(&start) {
            break;
        }
        count += 1;
        contents.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>2026-11-27T00:00:00.000Z</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            xml_escape(&k[bucket.len() + 1..]),
            xml_escape(&etag(v)),
            v.len()
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
        xml_escape(bucket),
        xml_escape(prefix)
    )
}

/// `If-Match` against the stored object: `Some(refusal)` when it fails.
fn if_match(state: &State, full: &str, headers: &http::HeaderMap) -> Option<Reply> {
    let wanted = headers.get(http::header::IF_MATCH)?.to_str().ok()?;
    match state.objects.get(full) {
        None => Some(s3_error(StatusCode::NOT_FOUND, "NoSuchKey")),
        Some(data) if etag(data).trim_matches('"') != wanted.trim_matches('"') => Some(s3_error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
        )),
        Some(_) => None,
    }
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` of an object of `len` bytes, as
/// the inclusive (first, last); `None` if unsatisfiable or malformed.
fn byte_range(header: &str, len: usize) -> Option<(usize, usize)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let last = len.checked_sub(1)?;
    let (from, to) = match (a.trim(), b.trim()) {
        ("", n) => (len.saturating_sub(n.parse().ok()?), last),
        (a, "") => (a.parse().ok()?, last),
        (a, b) => (a.parse().ok()?, b.parse::<usize>().ok()?.min(last)),
    };
    (from <= to).then_some((from, to))
}

fn s3(
    state: &mut State,
    method: &http::Method,
    path: &str,
    query: &str,
    headers: &http::HeaderMap,
    body: Bytes,
) -> Reply {
    let path = percent_decode(path.trim_start_matches('/'));
    let (bucket, key) = path.split_once('/').unwrap_or((path.as_str(), ""));
    let full = format!("{bucket}/{key}");
    match *method {
        http::Method::PUT => {
            if headers.get("if-none-match").is_some_and(|v| v == "*")
                && state.objects.contains_key(&full)
            {
                return s3_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
            }
            // The claims' takeover and completion: a write to the version read.
            if let Some(refused) = if_match(state, &full, headers) {
                return refused;
            }
            let tag = etag(&body);
            state.objects.insert(full, body.to_vec());
            let mut r = reply(StatusCode::OK, "application/xml", "");
            if let Ok(v) = http::HeaderValue::from_str(&tag) {
                r.headers_mut().insert(http::header::ETAG, v);
            }
            r
        }
        http::Method::DELETE => {
            if let Some(refused) = if_match(state, &full, headers) {
                return refused;
            }
            state.objects.remove(&full);
            reply(StatusCode::NO_CONTENT, "application/xml", "")
        }
        http::Method::GET | http::Method::HEAD if key.is_empty() => {
            let prefix = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "prefix")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            reply(
                StatusCode::OK,
                "application/xml",
                list_objects(state, bucket, &prefix),
            )
        }
        http::Method::GET | http::Method::HEAD => match state.objects.get(&full) {
            Some(data) => {
                let head = *method == http::Method::HEAD;
                // pipeline-action reads its artifact by range.
                let range = headers
                    .get(http::header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| byte_range(v, data.len()));
                let (status, body) = match (&range, head) {
                    (_, true) => (StatusCode::OK, Vec::new()),
                    (Some((from, to)), false) => {
                        (StatusCode::PARTIAL_CONTENT, data[*from..=*to].to_vec())
                    }
                    (None, false) => (StatusCode::OK, data.clone()),
                };
                let mut r = reply(status, "application/octet-stream", body);
                let h = r.headers_mut();
                if let Some((from, to)) = range
                    && let Ok(v) =
                        http::HeaderValue::from_str(&format!("bytes {from}-{to}/{}", data.len()))
                {
                    h.insert(http::header::CONTENT_RANGE, v);
                }
                if let Ok(v) = http::HeaderValue::from_str(&etag(data)) {
                    h.insert(http::header::ETAG, v);
                }
                if head && let Ok(v) = http::HeaderValue::from_str(&data.len().to_string()) {
                    h.insert(http::header::CONTENT_LENGTH, v);
                }
                h.insert(
                    http::header::LAST_MODIFIED,
                    http::HeaderValue::from_static("Fri, 27 Nov 2026 00:00:00 GMT"),
                );
                r
            }
            None if *method == http::Method::HEAD => reply(StatusCode::NOT_FOUND, "", ""),
            None => s3_error(StatusCode::NOT_FOUND, "NoSuchKey"),
        },
        _ => s3_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_are_percent_decoded() {
        assert_eq!(
            percent_decode("bucket/badges/o/r/feature%252Fx.svg"),
            "bucket/badges/o/r/feature%2Fx.svg"
        );
        assert_eq!(percent_decode("a%20b%zz"), "a b%zz");
    }

    #[test]
    fn a_create_over_an_existing_object_fails_its_precondition() {
        let mut state = State::default();
        let mut headers = http::HeaderMap::new();
        headers.insert("if-none-match", http::HeaderValue::from_static("*"));
        let put = |state: &mut State| {
            s3(
                state,
                &http::Method::PUT,
                "/b/effects/x",
                "",
                &headers,
                Bytes::from_static(b"{}"),
            )
            .status()
        };
        assert_eq!(put(&mut state), StatusCode::OK);
        assert_eq!(put(&mut state), StatusCode::PRECONDITION_FAILED);
    }

    #[test]
    fn listing_returns_only_the_prefix() {
        let mut state = State::default();
        state.objects.insert("b/groups/1/a".into(), b"1".to_vec());
        state.objects.insert("b/groups/2/a".into(), b"2".to_vec());
        state.objects.insert("c/groups/1/b".into(), b"3".to_vec());
        let xml = list_objects(&state, "b", "groups/1/");
        assert!(xml.contains("<Key>groups/1/a</Key>"), "{xml}");
        assert!(!xml.contains("groups/2/a"), "{xml}");
        assert!(!xml.contains("groups/1/b"), "{xml}");
        assert!(xml.contains("<KeyCount>1</KeyCount>"), "{xml}");
    }
}
