//! What the burst came to: the answers and the bus's count checked against
//! the plan, as JSON and as text for a person.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;

use super::bus::Drained;
use super::plan::Plan;
use super::{Kind, LoadOptions, Sent};

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

pub(super) fn report(
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

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=100).map(f64::from).collect()).expect("samples");
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
    }
}
