//! `gantry load`: a burst of signed deliveries — genuine, resent and forged —
//! against a webhook endpoint, with what came back measured and checked.
//!
//! The answers alone cannot show that a delivery was published exactly
//! once, so `gantry load` also taps the bus: it adds its own rule and queue
//! to the bus `gantry` at the AWS endpoint (`--bus-endpoint`, as `gantry dev`
//! prints it) and counts the `Build Requested` / `Build Skipped` events per
//! correlation id once the burst is over.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gantry_core::github::{headers, signature};
use serde::Serialize;

mod bus;
mod plan;
mod report;

use bus::BusTap;
use plan::Planned;
pub use report::{BusReport, Latency, Report};

/// The payload sent when no file is given.
pub const DEFAULT_PAYLOAD: &str = include_str!("../../../examples/push.json");

/// What a delivery of the burst is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A fresh delivery id, signed with the secret.
    Genuine,
    /// An id already in the burst, sent again with the same body and
    /// signature, as GitHub's redelivery does.
    Resent,
    /// Signed with another secret.
    ForgedWrongSecret,
    /// The right secret's signature with one hex digit changed.
    ForgedBadSignature,
    /// No `X-Hub-Signature-256` at all.
    ForgedUnsigned,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Genuine => "genuine",
            Kind::Resent => "resent",
            Kind::ForgedWrongSecret => "forged (wrong secret)",
            Kind::ForgedBadSignature => "forged (bad signature)",
            Kind::ForgedUnsigned => "forged (unsigned)",
        }
    }

    pub fn forged(self) -> bool {
        matches!(
            self,
            Kind::ForgedWrongSecret | Kind::ForgedBadSignature | Kind::ForgedUnsigned
        )
    }
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub url: String,
    pub secret: String,
    pub event: String,
    /// The payload as GitHub sent it. For a push, its `after` SHA is
    /// replaced by a distinct one per delivery id.
    pub payload: Vec<u8>,
    pub count: usize,
    pub concurrency: usize,
    /// Fraction of the burst that resends an id already in it.
    pub duplicates: f64,
    /// Fraction of the burst that is forged.
    pub forged: f64,
    /// Seeds the order of the burst (the same seed, the same order).
    pub seed: u64,
    /// The AWS endpoint whose bus `gantry` to tap; `None` skips the bus check.
    pub bus_endpoint: Option<String>,
    /// How long to wait for the events on the bus after the burst.
    pub settle: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot tap the bus at {endpoint}: {reason}")]
    Tap { endpoint: String, reason: String },
}

/// One answer (or failure to get one).
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub kind: Kind,
    pub delivery_id: String,
    /// `None` when no answer came (connection refused, timeout…).
    pub status: Option<u16>,
    /// The answer's `outcome`, or the transport error.
    pub outcome: String,
    pub latency_ms: f64,
}

fn signature_for(kind: Kind, secret: &str, body: &[u8]) -> Option<String> {
    match kind {
        Kind::Genuine | Kind::Resent => Some(signature::sign(secret.as_bytes(), body)),
        Kind::ForgedWrongSecret => Some(signature::sign(
            format!("{secret}-but-not-quite").as_bytes(),
            body,
        )),
        Kind::ForgedBadSignature => {
            let mut good = signature::sign(secret.as_bytes(), body);
            // Flip the last hex digit.
            let last = good.pop().unwrap_or('0');
            good.push(if last == '0' { '1' } else { '0' });
            Some(good)
        }
        Kind::ForgedUnsigned => None,
    }
}

async fn send_one(
    client: &reqwest::Client,
    options: &LoadOptions,
    planned: &Planned,
    body: &[u8],
) -> Sent {
    let mut request = client
        .post(&options.url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/gantry-load")
        .header(headers::EVENT, &options.event)
        .header(headers::DELIVERY, &planned.delivery_id);
    if let Some(signature) = signature_for(planned.kind, &options.secret, body) {
        request = request.header(headers::SIGNATURE_256, signature);
    }
    let started = Instant::now();
    let result = async {
        let response = request.body(body.to_vec()).send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok::<_, reqwest::Error>((status, text))
    }
    .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (status, outcome) = match result {
        Ok((status, text)) => {
            let outcome = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["outcome"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "(no outcome)".to_owned());
            (Some(status), outcome)
        }
        Err(e) => (None, format!("no answer: {e}")),
    };
    Sent {
        kind: planned.kind,
        delivery_id: planned.delivery_id.clone(),
        status,
        outcome,
        latency_ms,
    }
}

/// Runs the burst and checks it. `Err` only when it could not run at all;
/// what went wrong in the burst is in the report's mismatches.
pub async fn run(options: LoadOptions) -> Result<Report, LoadError> {
    let plan = plan::plan(&options)?;
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .pool_max_idle_per_host(options.concurrency)
        .build()
        .map_err(|e| LoadError::Client(e.to_string()))?;
    let tap = match &options.bus_endpoint {
        Some(endpoint) => Some(BusTap::create(endpoint).await?),
        None => None,
    };

    let plan = Arc::new(plan);
    let options = Arc::new(options);
    // The tap is read while the burst runs, as any subscriber would: a
    // queue left to fill makes moto's PutEvents slower and slower.
    let burst_over: Arc<OnceLock<Instant>> = Arc::default();
    let reader = tap.map(|tap| {
        let (plan, burst_over) = (plan.clone(), burst_over.clone());
        let settle = options.settle;
        tokio::spawn(async move {
            let drained = bus::drain(&tap, &plan, settle, &burst_over).await;
            tap.remove().await;
            drained
        })
    });
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(options.concurrency);
    for _ in 0..options.concurrency {
        let (plan, options, next, client) =
            (plan.clone(), options.clone(), next.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(planned) = plan.requests.get(i) else {
                    break;
                };
                let body = &plan.bodies[planned.body];
                sent.push((i, send_one(&client, &options, planned, body).await));
            }
            sent
        }));
    }
    let mut sent: Vec<(usize, Sent)> = Vec::with_capacity(plan.requests.len());
    let mut failed = None;
    for worker in workers {
        match worker.await {
            Ok(part) => sent.extend(part),
            Err(e) => failed = Some(e),
        }
    }
    let duration = started.elapsed();
    let _ = burst_over.set(Instant::now());
    let bus = match reader {
        Some(reader) => match reader.await {
            Ok(drained) => Some(drained),
            Err(e) => return Err(LoadError::Options(format!("the bus reader failed: {e}"))),
        },
        None => None,
    };
    if let Some(e) = failed {
        return Err(LoadError::Options(format!("a sender failed: {e}")));
    }
    sent.sort_by_key(|(i, _)| *i);
    let sent: Vec<Sent> = sent.into_iter().map(|(_, s)| s).collect();
    Ok(report::report(&options, &plan, sent, duration, bus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_signatures_do_not_verify_and_genuine_ones_do() {
        let body = b"{}";
        let good = signature_for(Kind::Genuine, "s", body).expect("signed");
        assert_eq!(good, signature::sign(b"s", body));
        for kind in [Kind::ForgedWrongSecret, Kind::ForgedBadSignature] {
            let forged = signature_for(kind, "s", body).expect("signed");
            assert_ne!(forged, good);
            assert_eq!(forged.len(), good.len());
        }
        assert_eq!(signature_for(Kind::ForgedUnsigned, "s", body), None);
    }
}
