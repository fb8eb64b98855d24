//! The webhook's hot path (verify + parse + normalise + filter, no network)
//! beside its lower bounds over the same bytes: HMAC-SHA256 alone and
//! serde_json parsing alone. Target: handler ≤ 1.5 × (HMAC + parse).
//!
//! And the event it publishes, both ways: serialised as the bus does it,
//! beside serde_json writing the same content from an untyped `Value` and
//! a plain copy of the bytes; parsed as the next function does it (the
//! EventBridge envelope into the typed detail), beside serde_json
//! skimming the same bytes (`IgnoredAny`) and building a `Value`.
//!
//! cargo bench -p gantry-webhook --bench webhook (scripts/bench prints the ratios)

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gantry_core::config::Config;
use gantry_core::events::{BuildRequested, Detail, Envelope, entry_size};
use gantry_core::github::signature::{sign, verify_signature};
use gantry_core::webhook::{Assessment, DEFAULT_MAX_BODY_BYTES, Publication, Summary, process};
use http::{HeaderMap, HeaderValue};

const SECRET: &str = "bench-secret";

fn corpus() -> PathBuf {
    std::env::var_os("GANTRY_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"))
}

fn read(name: &str) -> Vec<u8> {
    let path = corpus().join("webhooks").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A push of about 1 MB: the corpus push with many commits.
fn synthetic_push() -> Vec<u8> {
    let mut push: serde_json::Value =
        serde_json::from_slice(&read("07_push__with-new-branch.payload.json"))
            .expect("corpus JSON");
    let commit = push["commits"][0].clone();
    let mut commits = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < 1024 * 1024 {
        let mut c = commit.clone();
        c["message"] = serde_json::json!(format!(
            "Commit {i}: adjust the widget frobnicator\n\nLonger explanation of commit {i}."
        ));
        c["modified"] = (0..8)
            .map(|j| format!("src/module_{i}/file_{j}.rs"))
            .collect();
        size += c.to_string().len();
        commits.push(c);
        i += 1;
    }
    push["commits"] = commits.into();
    push.to_string().into_bytes()
}

fn headers(event: &str, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        "x-github-event",
        HeaderValue::from_str(event).expect("event"),
    );
    h.insert(
        "x-github-delivery",
        HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    );
    h.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sign(SECRET.as_bytes(), body)).expect("sig"),
    );
    h
}

fn inputs() -> Vec<(String, &'static str, Vec<u8>)> {
    vec![
        (
            "push_new_branch".into(),
            "push",
            read("07_push__with-new-branch.payload.json"),
        ),
        (
            "push_tag_deleted".into(),
            "push",
            read("04_push__payload.json"),
        ),
        (
            "pull_request_opened".into(),
            "pull_request",
            read("10_pull_request__opened.payload.json"),
        ),
        (
            "pull_request_synchronize".into(),
            "pull_request",
            read("13_pull_request__synchronize.payload.json"),
        ),
        ("synthetic_push_1mb".into(), "push", synthetic_push()),
    ]
}

fn bench(c: &mut Criterion) {
    let config = Config::dev();
    let inputs = inputs();
    let mut group = c.benchmark_group("webhook");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (name, event, body) in &inputs {
        let h = headers(event, body);
        let signature = h
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("handler", name), body, |b, body| {
            b.iter(|| {
                let a = process(
                    &[SECRET],
                    &config,
                    &h,
                    black_box(body),
                    DEFAULT_MAX_BODY_BYTES,
                    &mut Summary::default(),
                );
                assert!(!matches!(&a, Assessment::Reply(r) if r.status >= 400));
                a
            });
        });
        group.bench_with_input(BenchmarkId::new("hmac_sha256", name), body, |b, body| {
            b.iter(|| verify_signature(&[SECRET], signature.as_deref(), black_box(body)));
        });
        group.bench_with_input(
            BenchmarkId::new("serde_json_value", name),
            body,
            |b, body| {
                b.iter(|| {
                    serde_json::from_slice::<serde_json::Value>(black_box(body))
                        .map(|_| ())
                        .is_ok()
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("serde_json_ignored", name),
            body,
            |b, body| {
                b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(body)).is_ok());
            },
        );
    }
    group.finish();
}

/// The `Build Requested` event the handler makes of a delivery.
fn requested(config: &Config, event: &str, body: &[u8]) -> BuildRequested {
    match process(
        &[SECRET],
        config,
        &headers(event, body),
        body,
        DEFAULT_MAX_BODY_BYTES,
        &mut Summary::default(),
    ) {
        Assessment::Publish { publication, .. } => match *publication {
            Publication::Requested(e) => e,
            Publication::Skipped(e) => panic!("{event} skipped: {}", e.reason.message),
            Publication::CheckRun(e) => panic!("{event} is a check run request: {e:?}"),
            Publication::Members(items) => panic!("{event} fanned out: {items:?}"),
        },
        Assessment::Reply(r) => panic!("{event} answered {}: {}", r.status, r.body),
    }
}

fn bench_events(c: &mut Criterion) {
    let config = Config::dev();
    let mut group = c.benchmark_group("event");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for (name, event, body) in inputs() {
        if name == "push_tag_deleted" {
            continue; // a deleted tag is skipped, no Build Requested
        }
        let detail = requested(&config, event, &body);
        let json = serde_json::to_string(&detail).expect("serialise");
        let value = serde_json::to_value(&detail).expect("value");
        let envelope = serde_json::to_vec(&serde_json::json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": BuildRequested::DETAIL_TYPE,
            "source": "gantry",
            "account": "123456789012",
            "time": "2026-11-27T03:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": value,
        }))
        .expect("envelope");
        group.throughput(Throughput::Bytes(json.len() as u64));
        group.bench_function(BenchmarkId::new("serialise", &name), |b| {
            b.iter(|| {
                let json = serde_json::to_string(black_box(&detail)).expect("serialise");
                entry_size(BuildRequested::DETAIL_TYPE, &json)
            });
        });
        group.bench_function(BenchmarkId::new("serialise_value", &name), |b| {
            b.iter(|| serde_json::to_string(black_box(&value)).expect("serialise"));
        });
        group.bench_function(BenchmarkId::new("copy_bytes", &name), |b| {
            b.iter(|| black_box(&json).clone());
        });
        group.throughput(Throughput::Bytes(envelope.len() as u64));
        group.bench_function(BenchmarkId::new("parse", &name), |b| {
            b.iter(|| {
                serde_json::from_slice::<Envelope<BuildRequested>>(black_box(&envelope))
                    .expect("parse")
            });
        });
        group.bench_function(BenchmarkId::new("parse_ignored", &name), |b| {
            b.iter(|| {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&envelope)).is_ok()
            });
        });
        group.bench_function(BenchmarkId::new("parse_value", &name), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&envelope)).is_ok());
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_events);
criterion_main!(benches);
