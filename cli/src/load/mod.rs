//! `gantry load`: a burst of signed deliveries — genuine, resent and forged —
//! against a webhook endpoint, with what came back measured and checked.
//!
//! The answers alone cannot show that a delivery was published exactly
//! once, so `gantry load` also taps the bus: it adds its own rule and queue
//! to the bus `gantry` at the AWS endpoint (`--bus-endpoint`, as `gantry dev`
//! prints it) and counts the `Build Requested` / `Build Skipped` events per
//! correlation id once the burst is over.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gantry_core::github::{headers, signature};
use serde::Serialize;

use gantry_core::events::{BuildRequested, BuildSkipped, Detail, SOURCE};
use gantry_local::stack;
use gantry_local::tap::{Tap, TapSpec};

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

/// One planned request.
#[derive(Debug, Clone)]
struct Planned {
    kind: Kind,
    delivery_id: String,
    /// Index into the bodies.
    body: usize,
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

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<f64>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        // Nearest rank.
        let at = |p: f64| {
            let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1]
        };
        Some(Latency {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: samples[samples.len() - 1],
        })
    }
}

/// What the bus tap saw.
#[derive(Debug, Clone, Serialize)]
pub struct BusReport {
    pub endpoint: String,
    /// Events counted (`Build Requested` and `Build Skipped`).
    pub events: usize,
    /// Genuine ids with exactly one event.
    pub genuine_published_once: usize,
    /// Genuine ids with no event seen (within the settle time).
    pub genuine_unpublished: usize,
    /// Genuine ids with more than one event.
    pub genuine_published_more_than_once: usize,
    /// Events for a forged delivery's id.
    pub forged_published: usize,
    /// Events with a correlation id not in this burst (another sender).
    pub foreign: usize,
    /// How long after the burst the last event was read.
    pub drained_after_ms: f64,
    /// Events per correlation id of this burst, for ids with any.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_id: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub event: String,
    pub deliveries: usize,
    pub genuine: usize,
    pub resent: usize,
    pub forged: usize,
    pub concurrency: usize,
    pub duration_ms: f64,
    pub deliveries_per_second: f64,
    pub latency: Option<Latency>,
    /// Latency per kind of delivery (forged ones never reach the ledger).
    pub latency_by_kind: BTreeMap<Kind, Latency>,
    /// `kind status outcome` → count.
    pub answers: BTreeMap<String, usize>,
    pub bus: Option<BusReport>,
    /// Every way the burst differed from what it should have been.
    pub mismatches: Vec<String>,
    pub sent: Vec<Sent>,
}

/// A small deterministic generator: the burst's order needs no more.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for `n > 0`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The bodies and the order of the burst.
struct Plan {
    bodies: Vec<Vec<u8>>,
    requests: Vec<Planned>,
}

fn plan(options: &LoadOptions) -> Result<Plan, LoadError> {
    if options.count == 0 || options.concurrency == 0 {
        return Err(LoadError::Options(
            "--count and --concurrency must be at least 1".into(),
        ));
    }
    let fraction_ok = |f: f64| (0.0..=1.0).contains(&f);
    if !fraction_ok(options.duplicates)
        || !fraction_ok(options.forged)
        || options.duplicates + options.forged > 1.0
    {
        return Err(LoadError::Options(
            "--duplicates and --forged are fractions in 0..1 whose sum is at most 1".into(),
        ));
    }
    let n = options.count;
    let forged = (n as f64 * options.forged).round() as usize;
    let mut resent = (n as f64 * options.duplicates).round() as usize;
    let mut genuine = n.saturating_sub(forged + resent);
    // A resend needs something to resend.
    if genuine == 0 && resent > 0 {
        genuine = 1;
        resent -= 1;
    }

    // A push's `after` SHA, replaced in the raw text so the rest of the
    // bytes stay as GitHub wrote them.
    let after = serde_json::from_slice::<serde_json::Value>(&options.payload)
        .ok()
        .and_then(|v| v["after"].as_str().map(str::to_owned))
        .filter(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
    let text = String::from_utf8_lossy(&options.payload).into_owned();
    let mut rng = SplitMix(options.seed);
    let run = rng.next();
    let mut bodies = Vec::with_capacity(genuine + forged);
    let mut body_for = |i: usize| -> usize {
        let body = match &after {
            Some(sha) => text.replace(sha, &format!("{run:016x}{i:024x}")),
            None => text.clone(),
        };
        bodies.push(body.into_bytes());
        bodies.len() - 1
    };
    let fresh_id = || uuid::Uuid::new_v4().to_string();

    let mut requests: Vec<Planned> = Vec::with_capacity(n);
    for i in 0..genuine {
        requests.push(Planned {
            kind: Kind::Genuine,
            delivery_id: fresh_id(),
            body: body_for(i),
        });
    }
    let forged_kinds = [
        Kind::ForgedWrongSecret,
        Kind::ForgedBadSignature,
        Kind::ForgedUnsigned,
    ];
    for i in 0..forged {
        requests.push(Planned {
            kind: forged_kinds[i % forged_kinds.len()],
            delivery_id: fresh_id(),
            body: body_for(genuine + i),
        });
    }
    // Fisher–Yates.
    for i in (1..requests.len()).rev() {
        let j = rng.below(i + 1);
        requests.swap(i, j);
    }
    // Each resend goes somewhere after its original (a key between the
    // original's position and the end); with concurrency it may still
    // overtake it, and then the original is the one answered `duplicate`.
    let originals: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == Kind::Genuine)
        .map(|(i, _)| i)
        .collect();
    let end = requests.len() as f64;
    let mut keyed: Vec<(f64, Planned)> = requests
        .into_iter()
        .enumerate()
        .map(|(i, p)| (i as f64, p))
        .collect();
    for _ in 0..resent {
        let original = originals[rng.below(originals.len())];
        let step = (rng.below(1_000_000) + 1) as f64 / 1_000_001.0;
        let key = original as f64 + step * (end - original as f64);
        let resend = Planned {
            kind: Kind::Resent,
            ..keyed[original].1.clone()
        };
        keyed.push((key, resend));
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let requests = keyed.into_iter().map(|(_, p)| p).collect();
    Ok(Plan { bodies, requests })
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

/// The rule and queue `gantry load` adds to the bus to count publications.
struct BusTap {
    endpoint: String,
    tap: Tap,
}

impl BusTap {
    async fn create(endpoint: &str) -> Result<BusTap, LoadError> {
        let sdk = stack::sdk_config(endpoint).await;
        let name = format!(
            "gantry-load-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let pattern = serde_json::json!({
            "source": [SOURCE],
            "detail-type": [BuildRequested::DETAIL_TYPE, BuildSkipped::DETAIL_TYPE],
        });
        let spec = TapSpec {
            queue: &name,
            rule: &name,
            target_id: "gantry-load",
            pattern: &pattern,
        };
        let tap = Tap::create(&sdk, spec).await.map_err(|e| LoadError::Tap {
            endpoint: endpoint.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(BusTap {
            endpoint: endpoint.to_owned(),
            tap,
        })
    }

    /// Reads and deletes what the queue holds: the correlation ids. Only
    /// what was deleted counts: a message whose delete failed comes back
    /// after the visibility timeout and is counted then.
    async fn receive(&self) -> Result<Vec<String>, String> {
        let events = self
            .tap
            .receive(Duration::from_secs(1))
            .await
            .map_err(|e| e.to_string())?;
        Ok(events
            .iter()
            .map(|event| {
                event["detail"]["correlation_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect())
    }

    async fn remove(&self) {
        self.tap.remove().await;
    }
}

/// Runs the burst and checks it. `Err` only when it could not run at all;
/// what went wrong in the burst is in the report's mismatches.
pub async fn run(options: LoadOptions) -> Result<Report, LoadError> {
    let plan = plan(&options)?;
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
            let drained = drain(&tap, &plan, settle, &burst_over).await;
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
    Ok(report(&options, &plan, sent, duration, bus))
}

/// What the tap read after the burst: (events per correlation id, time to
/// the last event, an error if reading failed).
struct Drained {
    endpoint: String,
    per_id: HashMap<String, usize>,
    after: Duration,
    error: Option<String>,
}

/// Reads the tap until the burst is over and then either every genuine id
/// was seen and the queue stayed empty for a second (a second publication
/// would have come with the first), or `settle` has passed.
async fn drain(
    tap: &BusTap,
    plan: &Plan,
    settle: Duration,
    burst_over: &OnceLock<Instant>,
) -> Drained {
    let genuine: std::collections::HashSet<&str> = plan
        .requests
        .iter()
        .filter(|p| p.kind == Kind::Genuine)
        .map(|p| p.delivery_id.as_str())
        .collect();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    let mut last = None;
    let mut error = None;
    loop {
        let received = tap.receive().await;
        let ended = burst_over.get().copied();
        match received {
            Ok(ids) if ids.is_empty() => {
                if let Some(ended) = ended {
                    let all = genuine.iter().all(|id| per_id.contains_key(*id));
                    if all || ended.elapsed() >= settle {
                        break;
                    }
                }
            }
            Ok(ids) => {
                last = Some(Instant::now());
                for id in ids {
                    *per_id.entry(id).or_default() += 1;
                }
            }
            Err(e) => {
                // Keep trying until the time is up: under load, a failed
                // read is not the end of the events.
                error = Some(e);
                if ended.is_some_and(|ended| ended.elapsed() >= settle) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        error = None;
        if ended.is_some_and(|ended| ended.elapsed() >= settle + Duration::from_secs(5)) {
            break;
        }
    }
    let ended = burst_over.get().copied();
    let after = match (last, ended) {
        (Some(last), Some(ended)) => last.saturating_duration_since(ended),
        _ => Duration::ZERO,
    };
    Drained {
        endpoint: tap.endpoint.clone(),
        per_id,
        after,
        error,
    }
}

fn report(
    options: &LoadOptions,
    plan: &Plan,
    sent: Vec<Sent>,
    duration: Duration,
    bus: Option<Drained>,
) -> Report {
    let mut mismatches = Vec::new();
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
    // Per genuine id: the answers to all its sends.
    let mut per_id: HashMap<&str, Vec<&Sent>> = HashMap::new();
    for s in &sent {
        let status = s
            .status
            .map(|c| c.to_string())
            .unwrap_or_else(|| "---".to_owned());
        let outcome = if s.status.is_some() {
            s.outcome.as_str()
        } else {
            "no answer"
        };
        *answers
            .entry(format!("{} {status} {outcome}", s.kind.as_str()))
            .or_default() += 1;
        by_kind.entry(s.kind).or_default().push(s.latency_ms);
        if s.kind.forged() {
            if s.status != Some(401) {
                mismatches.push(format!(
                    "{} delivery {} answered {} {} instead of 401",
                    s.kind.as_str(),
                    s.delivery_id,
                    s.status.map(|c| c.to_string()).unwrap_or_default(),
                    s.outcome
                ));
            }
        } else {
            per_id.entry(&s.delivery_id).or_default().push(s);
        }
    }
    let published =
        |s: &Sent| s.status == Some(202) && (s.outcome == "accepted" || s.outcome == "skipped");
    let duplicate = |s: &Sent| s.status == Some(200) && s.outcome == "duplicate";
    let mut ids: Vec<&&str> = per_id.keys().collect();
    ids.sort();
    for id in ids {
        let got_answers = &per_id[*id];
        let accepted = got_answers.iter().filter(|s| published(s)).count();
        let duplicates = got_answers.iter().filter(|s| duplicate(s)).count();
        if accepted != 1 || accepted + duplicates != got_answers.len() {
            let got: Vec<String> = got_answers
                .iter()
                .map(|s| {
                    format!(
                        "{} {}",
                        s.status.map(|c| c.to_string()).unwrap_or_default(),
                        s.outcome
                    )
                })
                .collect();
            mismatches.push(format!(
                "delivery {id} sent {} time(s): expected one 202 accepted and the rest 200 duplicate, got [{}]",
                got_answers.len(),
                got.join(", ")
            ));
        }
    }

    let bus = bus.map(|drained| {
        if let Some(e) = &drained.error {
            mismatches.push(format!("reading the bus tap failed: {e}"));
        }
        let kinds: HashMap<&str, Kind> = plan
            .requests
            .iter()
            .filter(|p| p.kind != Kind::Resent)
            .map(|p| (p.delivery_id.as_str(), p.kind))
            .collect();
        let mut report = BusReport {
            endpoint: drained.endpoint.clone(),
            events: drained.per_id.values().sum(),
            genuine_published_once: 0,
            genuine_unpublished: 0,
            genuine_published_more_than_once: 0,
            forged_published: 0,
            foreign: 0,
            drained_after_ms: drained.after.as_secs_f64() * 1000.0,
            per_id: BTreeMap::new(),
        };
        for (id, count) in &drained.per_id {
            match kinds.get(id.as_str()) {
                None => report.foreign += count,
                Some(kind) if kind.forged() => {
                    report.forged_published += count;
                    mismatches.push(format!(
                        "{} delivery {id} was published {count} time(s)",
                        kind.as_str()
                    ));
                }
                Some(_) => {}
            }
        }
        for (id, kind) in &kinds {
            if *kind != Kind::Genuine {
                continue;
            }
            let count = drained.per_id.get(*id).copied().unwrap_or(0);
            match count {
                0 => {
                    report.genuine_unpublished += 1;
                    mismatches.push(format!(
                        "delivery {id} not seen on the bus (within --settle)"
                    ));
                }
                1 => report.genuine_published_once += 1,
                n => {
                    report.genuine_published_more_than_once += 1;
                    mismatches.push(format!("delivery {id} was published {n} times"));
                }
            }
        }
        report.per_id = drained
            .per_id
            .iter()
            .filter(|(id, _)| kinds.contains_key(id.as_str()))
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        report
    });
    mismatches.sort();

    let count = |k: fn(Kind) -> bool| plan.requests.iter().filter(|p| k(p.kind)).count();
    let seconds = duration.as_secs_f64();
    Report {
        url: options.url.clone(),
        event: options.event.clone(),
        deliveries: sent.len(),
        genuine: count(|k| k == Kind::Genuine),
        resent: count(|k| k == Kind::Resent),
        forged: count(Kind::forged),
        concurrency: options.concurrency,
        duration_ms: seconds * 1000.0,
        deliveries_per_second: if seconds > 0.0 {
            sent.len() as f64 / seconds
        } else {
            0.0
        },
        latency: Latency::of(sent.iter().map(|s| s.latency_ms).collect()),
        latency_by_kind: by_kind
            .into_iter()
            .filter_map(|(k, v)| Latency::of(v).map(|l| (k, l)))
            .collect(),
        answers,
        bus,
        mismatches,
        sent,
    }
}

impl Report {
    /// The report for a person.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "gantry load: {} {} deliveries to {} ({} genuine, {} resent, {} forged), concurrency {}",
            self.deliveries,
            self.event,
            self.url,
            self.genuine,
            self.resent,
            self.forged,
            self.concurrency
        ));
        line(format!(
            "  duration {:.3} s, {:.1} deliveries/s",
            self.duration_ms / 1000.0,
            self.deliveries_per_second
        ));
        let fmt = |l: &Latency| {
            format!(
                "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
                l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            )
        };
        if let Some(l) = &self.latency {
            line(format!("  latency ms: {}", fmt(l)));
        }
        for (kind, l) in &self.latency_by_kind {
            line(format!("    {:<24} {}", kind.as_str(), fmt(l)));
        }
        line("  answers:".to_owned());
        for (answer, n) in &self.answers {
            line(format!("    {answer:<40} {n}"));
        }
        match &self.bus {
            Some(bus) => {
                line(format!(
                    "  bus ({}): {} event(s); genuine ids published once {}, not seen {}, more than once {}; forged published {}; other senders' {}; last read {:.0} ms after the burst",
                    bus.endpoint,
                    bus.events,
                    bus.genuine_published_once,
                    bus.genuine_unpublished,
                    bus.genuine_published_more_than_once,
                    bus.forged_published,
                    bus.foreign,
                    bus.drained_after_ms
                ));
            }
            None => {
                line("  bus: not checked (pass --bus-endpoint or set AWS_ENDPOINT_URL)".to_owned())
            }
        }
        if self.mismatches.is_empty() {
            line("  mismatches: none".to_owned());
        } else {
            line(format!("  mismatches: {}", self.mismatches.len()));
            for m in self.mismatches.iter().take(50) {
                line(format!("    {m}"));
            }
            if self.mismatches.len() > 50 {
                line(format!("    … and {} more", self.mismatches.len() - 50));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(count: usize, duplicates: f64, forged: f64) -> LoadOptions {
        LoadOptions {
            url: "http://127.0.0.1:9/".into(),
            secret: "s".into(),
            event: "push".into(),
            payload: DEFAULT_PAYLOAD.as_bytes().to_vec(),
            count,
            concurrency: 4,
            duplicates,
            forged,
            seed: 7,
            bus_endpoint: None,
            settle: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_plan_has_the_asked_mix_and_every_resend_follows_its_original() {
        let plan = plan(&options(200, 0.1, 0.1)).expect("plan");
        let kinds = |k: fn(Kind) -> bool| plan.requests.iter().filter(|p| k(p.kind)).count();
        assert_eq!(plan.requests.len(), 200);
        assert_eq!(kinds(|k| k == Kind::Genuine), 160);
        assert_eq!(kinds(|k| k == Kind::Resent), 20);
        assert_eq!(kinds(Kind::forged), 20);
        for (i, p) in plan.requests.iter().enumerate() {
            if p.kind == Kind::Resent {
                let original = plan
                    .requests
                    .iter()
                    .position(|o| o.kind == Kind::Genuine && o.delivery_id == p.delivery_id)
                    .expect("original");
                assert!(original < i);
                assert_eq!(plan.requests[original].body, p.body);
            }
        }
        // Distinct pushes: every body differs, and each is still JSON with
        // the new SHA as `after`.
        let mut bodies = plan.bodies.clone();
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 180);
        let v: serde_json::Value = serde_json::from_slice(&plan.bodies[0]).expect("json");
        assert_ne!(v["after"], "9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070");
        assert_eq!(v["after"], v["head_commit"]["id"]);
    }

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

    #[test]
    fn bad_fractions_are_refused() {
        assert!(plan(&options(10, 0.6, 0.6)).is_err());
        assert!(plan(&options(10, -0.1, 0.0)).is_err());
        assert!(plan(&options(0, 0.0, 0.0)).is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=100).map(f64::from).collect()).expect("samples");
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
    }
}
