//! Helpers the end-to-end tests share: the corpus beside the repository,
//! signed GitHub requests, a local stack in a fresh moto server, and log
//! capture.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod browser;
pub mod cfn;
pub mod pages;

use gantry_core::github::{headers, signature};
use gantry_local::moto::Moto;
use gantry_local::stack::{self, Stack, StackSpec};
use gantry_webhook::{Deps, Settings};
use http::{HeaderMap, HeaderValue};

/// A gantry.yaml for the corpus's repositories (`Codertocat/*`) on the
/// dev project, every pushed branch building; `rule` adds keys to the
/// repository's entry (indented four spaces).
pub fn every_push_config(rule: &str) -> String {
    format!(
        "version: 1\nrepositories:\n  - name: Codertocat/*\n    project: gantry-dev\n    push:\n      branches: ['**']\n{rule}"
    )
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/corpus` beside the repository (or `$GANTRY_CORPUS`).
pub fn corpus() -> PathBuf {
    let dir = std::env::var_os("GANTRY_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/corpus"));
    assert!(
        dir.join("webhooks").is_dir(),
        "the test corpus is not at {} (set GANTRY_CORPUS)",
        dir.display()
    );
    dir
}

/// One corpus webhook delivery: file name, event header, raw bytes.
pub struct CorpusDelivery {
    pub file: String,
    pub event: String,
    pub action: String,
    pub body: Vec<u8>,
}

/// Every delivery listed in `webhooks/MANIFEST.tsv`.
pub fn corpus_webhooks() -> Vec<CorpusDelivery> {
    let dir = corpus().join("webhooks");
    let manifest =
        std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("webhooks/MANIFEST.tsv");
    manifest
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let file = cols[0].to_owned();
            let body = std::fs::read(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            CorpusDelivery {
                file,
                event: cols[1].to_owned(),
                action: cols[2].to_owned(),
                body,
            }
        })
        .collect()
}

pub fn corpus_file(name: &str) -> Vec<u8> {
    let path = corpus().join("webhooks").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// CodeBuild's state change for `build_id` of the dev project in
/// `status`, from the corpus's sample; FAILED fails its BUILD phase.
pub fn codebuild_event(build_id: &str, status: &str) -> serde_json::Value {
    let path = corpus().join("events/09_doc_codebuild_state_change.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut event: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let arn = format!("arn:aws:codebuild:us-east-1:123456789012:build/{build_id}");
    event["detail"]["build-id"] = serde_json::json!(arn);
    event["detail"]["project-name"] = serde_json::json!("gantry-dev");
    event["detail"]["build-status"] = serde_json::json!(status);
    if status == "FAILED"
        && let Some(phases) = event["detail"]["additional-information"]["phases"].as_array_mut()
    {
        for phase in phases {
            if phase["phase-type"] == "BUILD" {
                phase["phase-status"] = serde_json::json!("FAILED");
            }
        }
    }
    event
}

/// The headers GitHub sends with `body`, signed with `secret`.
pub fn github_headers(event: &str, delivery_id: &str, body: &[u8], secret: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let value = |s: &str| HeaderValue::from_str(s).expect("header value");
    h.insert("content-type", value("application/json"));
    h.insert("user-agent", value("GitHub-Hookshot/044aadd"));
    h.insert(headers::EVENT, value(event));
    h.insert(headers::DELIVERY, value(delivery_id));
    h.insert(
        headers::SIGNATURE_256,
        value(&signature::sign(secret.as_bytes(), body)),
    );
    h
}

pub const SECRET: &str = "e2e-webhook-secret-5f1c";
/// The GitHub token the local stack stores; must never reach a log.
pub const GITHUB_TOKEN: &str = "ghp_e2eTokenThatMustNeverBeLogged0000";

/// A moto server with Gantry's local stack in it.
pub struct LocalStack {
    pub moto: Moto,
    pub sdk: aws_config::SdkConfig,
    pub stack: Stack,
}

impl LocalStack {
    pub async fn start(config_yaml: &str) -> LocalStack {
        // A server of its own, forked: moto is imported once per test binary.
        let moto = Moto::fork()
            .await
            .expect("moto server (pip install 'moto[server]')");
        let sdk = stack::sdk_config(moto.endpoint()).await;
        let template =
            std::fs::read_to_string(workspace().join("template.yaml")).expect("template.yaml");
        let stack = stack::provision(
            &sdk,
            &StackSpec {
                template_yaml: &template,
                webhook_secret: SECRET,
                config_yaml,
                buildspecs: &[],
                github_token: Some(GITHUB_TOKEN),
                secure_parameters: &[],
                secrets: &[],
            },
        )
        .await
        .expect("provision the local stack");
        LocalStack { moto, sdk, stack }
    }

    /// The webhook's settings as `template.yaml` sets them, pointed at the
    /// local stack; `overrides` replace single variables.
    pub fn settings(&self, overrides: &[(&str, &str)]) -> Settings {
        stack::webhook_settings(overrides).expect("settings")
    }

    pub fn deps(&self, overrides: &[(&str, &str)]) -> Deps {
        self.settings(overrides).deps(&self.sdk)
    }

    /// Runs each function on what its rule's queue holds, as EventBridge
    /// would, until the bus is quiet; returns what the event log saw, in
    /// order.
    pub async fn pump(
        &self,
        functions: &gantry_local::functions::LocalFunctions,
    ) -> Vec<gantry_local::tap::Observed> {
        let mut logged = Vec::new();
        for _ in 0..20 {
            let batch = self.observed(Duration::ZERO).await;
            if batch.is_empty() {
                break;
            }
            for o in &batch {
                functions.dispatch(o).await;
            }
            logged.extend(batch.into_iter().filter(|o| o.rule == "EventLogRule"));
        }
        logged
    }

    /// What the event-log rule (every Gantry event, once) received.
    pub async fn logged(&self, wait: Duration) -> Vec<gantry_local::tap::Observed> {
        let mut all = self.observed(wait).await;
        all.retain(|o| o.rule == "EventLogRule");
        all
    }

    /// Everything the rules routed, waiting up to `wait` for the first.
    pub async fn observed(&self, wait: Duration) -> Vec<gantry_local::tap::Observed> {
        gantry_local::tap::drain(&self.stack.rules, wait).await
    }
}

/// Log lines written while a guard from [`capture_logs`] is alive.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines every handler in this test process wrote, in the
/// functions' own JSON format. The subscriber is process-wide (tracing's
/// per-thread subscribers lose events when tests run in parallel), so a test
/// picks its own lines out by delivery id.
pub fn capture_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            gantry_aws::logging::init_with_writer(move || writer.clone());
            captured
        })
        .clone()
}

/// Appends `lines` to the log at `place` as CodeBuild writes it (one event
/// a line), making the group and stream if they are not there yet.
pub async fn put_build_log(
    sdk: &aws_config::SdkConfig,
    place: &gantry_core::page::log::LogPlace,
    lines: &[String],
) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    // Either call may find what it makes there already.
    let _ = logs
        .create_log_group()
        .log_group_name(&place.group)
        .send()
        .await;
    let _ = logs
        .create_log_stream()
        .log_group_name(&place.group)
        .log_stream_name(&place.stream)
        .send()
        .await;
    let now = i64::try_from(gantry_core::events::now_ms()).expect("now");
    let mut batch = Vec::new();
    let mut bytes = 0;
    for (i, line) in lines.iter().enumerate() {
        bytes += line.len() + 26;
        batch.push(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now)
                .message(format!("{line}\n"))
                .build()
                .expect("an event"),
        );
        // Within PutLogEvents' 10,000 events and 1 MB.
        if batch.len() == 10_000 || bytes > 900_000 || i + 1 == lines.len() {
            logs.put_log_events()
                .log_group_name(&place.group)
                .log_stream_name(&place.stream)
                .set_log_events(Some(std::mem::take(&mut batch)))
                .send()
                .await
                .expect("log written");
            bytes = 0;
        }
    }
}

/// A recording proxy in front of the moto server: every request Gantry's
/// functions send, exactly as sent.
pub use gantry_local::proxy::{Proxy as RecordingProxy, Recorded};
