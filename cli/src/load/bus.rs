//! Counting publications: the rule and queue `gantry load` adds to the bus
//! `gantry`, read while the burst runs and until it has settled.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gantry_core::events::{BuildRequested, BuildSkipped, Detail, SOURCE};
use gantry_local::stack::{self, names};
use gantry_local::tap::{Tap, TapSpec};

use super::plan::Plan;
use super::{Kind, LoadError};

/// The rule and queue `gantry load` adds to the bus to count publications.
pub(super) struct BusTap {
    endpoint: String,
    tap: Tap,
}

impl BusTap {
    pub(super) async fn create(endpoint: &str) -> Result<BusTap, LoadError> {
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
            bus: names::BUS,
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

    pub(super) async fn remove(&self) {
        self.tap.remove().await;
    }
}

/// What the tap read after the burst: (events per correlation id, time to
/// the last event, an error if reading failed).
pub(super) struct Drained {
    pub(super) endpoint: String,
    pub(super) per_id: HashMap<String, usize>,
    pub(super) after: Duration,
    pub(super) error: Option<String>,
}

/// Reads the tap until the burst is over and then either every genuine id
/// was seen and the queue stayed empty for a second (a second publication
/// would have come with the first), or `settle` has passed.
pub(super) async fn drain(
    tap: &BusTap,
    plan: &Plan,
    settle: Duration,
    burst_over: &OnceLock<Instant>,
) -> Drained {
    let genuine: HashSet<&str> = plan
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
