//! A loopback HTTP proxy in front of the moto server.
//!
//! It does two things, both for local runs only:
//! - moto answers CodeBuild with ISO 8601 strings where CodeBuild's JSON
//!   protocol has epoch seconds (`startTime`, `phases[].endTime`, …); boto3
//!   accepts either, the Rust SDK only the latter. The proxy rewrites those
//!   fields in CodeBuild answers so the functions read them as they read
//!   AWS's own.
//! - It can keep every request, so a test sees exactly what Gantry asked
//!   AWS, including what moto does not store (StartBuild's overrides).
//! - With the `faults` feature (the tests'; never the released `gantry`),
//!   it can inject faults: throttles, 5xx, slow or stalled answers, dropped
//!   connections, for the requests that match.

#[cfg(feature = "faults")]
pub mod faults;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;

#[cfg(feature = "faults")]
pub use faults::{Fault, Faults, Match, Times};

/// The fault table the proxy consults: none without the feature.
#[cfg(feature = "faults")]
type Table = Faults;
#[cfg(not(feature = "faults"))]
type Table = NoFaults;

/// Without the `faults` feature there is nothing to inject.
#[cfg(not(feature = "faults"))]
#[derive(Debug, Clone, Default)]
struct NoFaults;

/// What the fault table made of one request.
struct Injection {
    /// Answered by a fault, not forwarded.
    faulted: bool,
    /// The answer to give instead of forwarding, if any.
    answer: Option<Result<hyper::Response<Full<Bytes>>, Dropped>>,
}

#[cfg(not(feature = "faults"))]
async fn inject(_: &Table, _: &str, _: &str, _: Option<&str>) -> Injection {
    Injection {
        faulted: false,
        answer: None,
    }
}

#[cfg(feature = "faults")]
async fn inject(table: &Table, method: &str, path: &str, target: Option<&str>) -> Injection {
    let fault = table.take(method, path, target);
    let faulted = fault
        .as_ref()
        .is_some_and(|f| !matches!(f, Fault::Delay(_)));
    let answer = match fault {
        None => None,
        Some(Fault::Delay(wait)) => {
            tokio::time::sleep(wait).await;
            None
        }
        Some(Fault::Stall(wait)) => {
            tokio::time::sleep(wait).await;
            Some(Err(Dropped))
        }
        Some(Fault::Drop) => Some(Err(Dropped)),
        Some(Fault::Respond {
            status,
            content_type,
            body,
        }) => {
            let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() =
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            if let Ok(value) = http::HeaderValue::from_str(&content_type) {
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_TYPE, value);
            }
            response.headers_mut().insert(
                "x-amzn-requestid",
                http::HeaderValue::from_static("gantry-fault"),
            );
            Some(Ok(response))
        }
    };
    Injection { faulted, answer }
}

/// One request that went through the proxy.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// `X-Amz-Target` for the JSON protocols (`CodeBuild_20161006.StartBuild`).
    pub target: Option<String>,
    pub body: Vec<u8>,
    /// Answered by an injected fault, not forwarded to moto (a delayed
    /// request is forwarded, so not faulted).
    pub faulted: bool,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Proxy {
    endpoint: String,
    recorded: Option<Arc<Mutex<Vec<Recorded>>>>,
    #[cfg(feature = "faults")]
    faults: Faults,
    task: tokio::task::JoinHandle<()>,
}

/// The proxy closes the connection without an answer (an injected drop or
/// stall); hyper does so when the service fails.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub struct Dropped;

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const CODEBUILD_TARGET: &str = "CodeBuild_20161006.";

/// `2026-11-27T01:22:26.232Z` (or `+00:00`) as epoch seconds.
pub fn iso8601_to_epoch(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &text[19..];
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (format!("0.{}", &r[..end]).parse::<f64>().ok()?, &r[end..])
        }
        None => (0.0, rest),
    };
    if !matches!(zone, "Z" | "+00:00" | "") {
        return None;
    }
    let days = gantry_core::time::days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    #[allow(clippy::cast_precision_loss)]
    Some(secs as f64 + fraction)
}

/// Rewrites every ISO 8601 string under a `…Time`/`…Date` key (and
/// `created`, `lastModified`) to epoch seconds.
pub fn epoch_timestamps(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let is_time = key.ends_with("Time")
                    || key.ends_with("Date")
                    || key == "created"
                    || key == "lastModified";
                if is_time
                    && let Some(epoch) = v.as_str().and_then(iso8601_to_epoch)
                    && let Some(n) = serde_json::Number::from_f64(epoch)
                {
                    *v = serde_json::Value::Number(n);
                } else {
                    epoch_timestamps(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(epoch_timestamps),
        _ => {}
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free loopback port; with `record`,
    /// it keeps every request.
    pub async fn start(upstream: &str, record: bool) -> std::io::Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let recorded: Option<Arc<Mutex<Vec<Recorded>>>> = record.then(Arc::default);
        let client = reqwest::Client::new();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let log = recorded.clone();
        #[cfg(feature = "faults")]
        let faults = Faults::default();
        #[cfg(feature = "faults")]
        let table: Table = faults.clone();
        #[cfg(not(feature = "faults"))]
        let table: Table = NoFaults;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (client, upstream, log, table) =
                    (client.clone(), upstream.clone(), log.clone(), table.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        // In its own task: a request the client gave up on
                        // still reaches moto, as it would reach AWS.
                        let task = tokio::spawn(forward(
                            client.clone(),
                            upstream.clone(),
                            log.clone(),
                            table.clone(),
                            req,
                        ));
                        async move { task.await.unwrap_or(Err(Dropped)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Proxy {
            endpoint,
            recorded,
            #[cfg(feature = "faults")]
            faults,
            task,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every request so far (none unless started with `record`).
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded
            .as_ref()
            .and_then(|r| r.lock().ok().map(|r| r.clone()))
            .unwrap_or_default()
    }

    /// The bodies of the requests to one JSON-protocol operation
    /// (`CodeBuild_20161006.StartBuild`), faulted or not.
    pub fn calls(&self, target: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.target.as_deref() == Some(target))
            .map(|r| r.json())
            .collect()
    }

    /// The bodies of the requests to one JSON-protocol operation that
    /// reached moto (not answered by a fault).
    pub fn forwarded(&self, target: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.target.as_deref() == Some(target) && !r.faulted)
            .map(|r| r.json())
            .collect()
    }

    /// The fault table: what is injected here applies to the next requests.
    #[cfg(feature = "faults")]
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

async fn forward(
    client: reqwest::Client,
    upstream: String,
    log: Option<Arc<Mutex<Vec<Recorded>>>>,
    table: Table,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let injected = inject(&table, parts.method.as_str(), &path, target.as_deref()).await;
    if let Some(log) = &log
        && let Ok(mut log) = log.lock()
    {
        log.push(Recorded {
            method: parts.method.to_string(),
            path: path.clone(),
            target: target.clone(),
            body: body.to_vec(),
            faulted: injected.faulted,
        });
    }
    if let Some(answer) = injected.answer {
        return answer;
    }
    let mut request = client.request(parts.method.clone(), format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != http::header::HOST {
            request = request.header(name, value);
        }
    }
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    let Ok(answer) = request.body(body).send().await else {
        *response.status_mut() = http::StatusCode::BAD_GATEWAY;
        return Ok(response);
    };
    *response.status_mut() = answer.status();
    for (name, value) in answer.headers() {
        if name != http::header::TRANSFER_ENCODING && name != http::header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    let mut bytes = answer.bytes().await.unwrap_or_default();
    if target
        .as_deref()
        .is_some_and(|t| t.starts_with(CODEBUILD_TARGET))
        && let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes)
    {
        epoch_timestamps(&mut json);
        bytes = Bytes::from(json.to_string());
    }
    *response.body_mut() = Full::new(bytes);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps_become_epoch_seconds() {
        assert_eq!(iso8601_to_epoch("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            iso8601_to_epoch("2026-11-27T01:22:26.250Z"),
            Some(1_795_742_546.25)
        );
        assert_eq!(
            iso8601_to_epoch("2000-02-29T12:00:00+00:00"),
            Some(951_825_600.0)
        );
        assert_eq!(iso8601_to_epoch("not a time"), None);
        let mut build = serde_json::json!({"build": {"startTime": "1970-01-01T00:01:00Z",
            "phases": [{"endTime": "1970-01-01T00:00:01.500Z", "phaseType": "QUEUED"}],
            "sourceVersion": "1970-01-01T00:00:00Z"}});
        epoch_timestamps(&mut build);
        assert_eq!(build["build"]["startTime"], 60.0);
        assert_eq!(build["build"]["phases"][0]["endTime"], 1.5);
        assert_eq!(build["build"]["sourceVersion"], "1970-01-01T00:00:00Z");
    }
}
