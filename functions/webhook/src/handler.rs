//! The webhook function's I/O around `gantry_core::webhook` (the pure
//! decisions: size, signature, parse, normalise, trigger rules): secrets
//! and configuration from SSM, the delivery ledger in S3, EventBridge.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use serde_json::json;

use gantry_aws::bus::{Entry, EventBus, PublishError};
use gantry_aws::config_source::ConfigSource;
use gantry_aws::ledger::{Claim, DeliveryLedger, body_digest};
use gantry_aws::secrets::{Secret, SecretCache, SecretError, TargetSecrets};
use gantry_core::deadline::Deadline;
use gantry_core::github::headers;
use gantry_core::github::signature::parse_header;
use gantry_core::records::Holder;
pub use gantry_core::webhook::{
    Assessment, Checks, DEFAULT_MAX_BODY_BYTES, Publication, Reply, Summary, Target, TargetKind,
    header, process, process_checked, too_large,
};

/// After a signature mismatch, re-read the secrets if the cached ones are
/// older than this: a rotation then takes effect on the next delivery,
/// while forged requests cannot make us call SSM more than once per period.
const REFRESH_AFTER_MISMATCH: Duration = Duration::from_secs(30);

/// The function's `Timeout` in template.yaml (a test holds them equal;
/// GitHub gives up on a delivery after 10 s): what a local driver gives a
/// request.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the handler needs, built once per cold start.
pub struct Deps {
    pub secrets: SecretCache,
    /// Per-repository (or per-organisation) secrets, if configured.
    pub target_secrets: Option<TargetSecrets>,
    pub config: ConfigSource,
    pub ledger: DeliveryLedger,
    pub bus: EventBus,
    pub max_body_bytes: usize,
    /// Deliveries signed longer ago than this are refused; `None`: off.
    pub replay_window: Option<Duration>,
    /// The longest an AWS call may take (the SDK's operation timeout).
    pub aws_timeout: Duration,
}

impl Deps {
    /// What accepting a delivery takes once it is verified: the claim, the
    /// publication and the claim's completion, each an AWS call. A request
    /// with less time left claims nothing.
    pub fn accept_budget(&self) -> Duration {
        self.aws_timeout.saturating_mul(3)
    }

    /// The most one request can take (see [`worst_case`]).
    pub fn worst_case(&self) -> Duration {
        worst_case(self.aws_timeout)
    }

    /// The deadline a local driver gives a request: Lambda's [`TIMEOUT`],
    /// or [`Deps::worst_case`] if the AWS timeouts these deps were built
    /// with need longer (the local stack gives the moto server 30 s a call).
    pub fn local_deadline(&self) -> Deadline {
        Deadline::after(TIMEOUT.max(self.worst_case()))
    }
}

/// The most one request can take when every AWS call takes `aws_timeout`:
/// the secret, the configuration, then the claim, the publication and the
/// claim's completion. Must fit [`TIMEOUT`] (a test checks the defaults).
pub fn worst_case(aws_timeout: Duration) -> Duration {
    aws_timeout.saturating_mul(5)
}

/// The whole handler, as a local driver (`gantry dev`, the tests) runs it:
/// with [`Deps::local_deadline`].
pub async fn handle(deps: &Deps, headers: &HeaderMap, body: &[u8]) -> Reply {
    handle_until(deps, headers, body, deps.local_deadline()).await
}

/// The whole handler: [`process_checked`] plus secrets, configuration, the
/// ledger and the bus, claiming the delivery only while `deadline` leaves
/// time to publish it. Logs one line per delivery.
pub async fn handle_until(
    deps: &Deps,
    headers: &HeaderMap,
    body: &[u8],
    deadline: Deadline,
) -> Reply {
    let mut summary = Summary::default();
    let (reply, outcome) = handle_inner(deps, headers, body, deadline, &mut summary).await;
    let repo = summary.repository.as_deref().unwrap_or("");
    let event = summary.event.as_deref().unwrap_or("");
    let delivery_id = summary.delivery_id.as_deref().unwrap_or("");
    if reply.status >= 500 {
        tracing::error!(delivery_id, correlation_id = delivery_id, event, repo, outcome, status = reply.status, reason = %reply.body, "delivery");
    } else if reply.status >= 400 {
        tracing::warn!(delivery_id, correlation_id = delivery_id, event, repo, outcome, status = reply.status, reason = %reply.body, "delivery");
    } else {
        tracing::info!(
            delivery_id,
            correlation_id = delivery_id,
            event,
            repo,
            outcome,
            status = reply.status,
            "delivery"
        );
    }
    reply
}

/// The secrets to verify a delivery with: the target's own if it has one,
/// else the shared ones; and the set of targets with their own.
struct Keys {
    secrets: Arc<[Secret]>,
    target: Option<Target>,
    own: Option<Arc<std::collections::BTreeMap<u64, Secret>>>,
}

async fn load_keys(
    deps: &Deps,
    target: Option<Target>,
    max_age: Duration,
) -> Result<Keys, SecretError> {
    let own = match &deps.target_secrets {
        Some(t) => Some(t.get_fresher_than(max_age).await?),
        None => None,
    };
    if let Some(target) = target
        && let Some(secret) = own.as_ref().and_then(|o| o.get(&target.id))
    {
        return Ok(Keys {
            secrets: Arc::from(vec![secret.clone()]),
            target: Some(target),
            own,
        });
    }
    Ok(Keys {
        secrets: deps.secrets.get_fresher_than(max_age).await?,
        target: None,
        own,
    })
}

async fn handle_inner(
    deps: &Deps,
    headers: &HeaderMap,
    body: &[u8],
    deadline: Deadline,
    summary: &mut Summary,
) -> (Reply, &'static str) {
    // Refuse the oversized before any I/O.
    if let Some(reply) = too_large(body.len(), deps.max_body_bytes) {
        return (reply, "too_large");
    }
    // A request without a well-formed signature is refused before any
    // secret is read: a flood of them costs SSM nothing.
    if let Err(e) = parse_header(header(headers, headers::SIGNATURE_256)) {
        return (Reply::refused(401, e), "unauthorized");
    }
    let target = Target::from_headers(headers);
    let keys = match load_keys(deps, target, Duration::MAX).await {
        Ok(k) => k,
        Err(e @ SecretError::NotConfigured { .. }) => {
            tracing::error!(error = %e, "refusing every delivery until a webhook secret is configured");
            return (
                Reply::refused(503, "webhook secret not configured; see the function's log"),
                "no_secret",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot verify deliveries");
            return (
                Reply::error(503, "webhook secret unavailable; redeliver later"),
                "no_secret",
            );
        }
    };
    let config = match deps.config.get().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot apply trigger rules");
            return (
                Reply::error(
                    503,
                    "configuration unavailable or invalid; see the function's log",
                ),
                "no_config",
            );
        }
    };
    let check = |keys: &Keys, summary: &mut Summary| {
        let has_own = |id: u64| keys.own.as_ref().is_some_and(|o| o.contains_key(&id));
        let checks = Checks {
            max_body_bytes: deps.max_body_bytes,
            replay_window: deps.replay_window,
            now_ms: gantry_core::events::now_ms(),
            target: keys.target,
            has_own_secret: &has_own,
        };
        process_checked(&keys.secrets, &config, headers, body, &checks, summary)
    };
    let mut assessment = check(&keys, summary);
    if matches!(&assessment, Assessment::Reply(r) if r.status == 401)
        && let Ok(fresh) = load_keys(deps, target, REFRESH_AFTER_MISMATCH).await
        && !Arc::ptr_eq(&fresh.secrets, &keys.secrets)
    {
        assessment = check(&fresh, summary);
    }
    let (delivery_id, publication) = match assessment {
        Assessment::Reply(reply) => {
            let outcome = match reply.status {
                200 => "pong",
                202 => "ignored",
                401 => "unauthorized",
                403 => "forbidden",
                413 => "too_large",
                _ => "bad_request",
            };
            return (reply, outcome);
        }
        Assessment::Publish {
            delivery_id,
            mut publication,
        } => {
            let now = gantry_core::events::now_ms();
            for source in publication.sources_mut() {
                source.received_at_ms = now;
            }
            (delivery_id, publication)
        }
    };
    // Claim only with time to publish and complete: a claim left behind by
    // a request Lambda killed would hold the redelivery off until the
    // claim's deadline passed.
    if !deadline.covers(deps.accept_budget()) {
        tracing::error!(
            left_ms = u64::try_from(deadline.remaining().as_millis()).unwrap_or(u64::MAX),
            "not enough time left to accept the delivery"
        );
        return (
            Reply::error(
                503,
                "not enough time left to accept the delivery; redeliver it",
            ),
            "out_of_time",
        );
    }
    let holder = Holder {
        id: delivery_id.clone(),
        deadline,
    };
    let claimed = match deps.ledger.claim(&body_digest(body), &holder).await {
        Ok(Claim::New(claimed)) => claimed,
        Ok(Claim::Duplicate) => {
            return (
                Reply::new(
                    200,
                    json!({ "outcome": "duplicate", "correlation_id": delivery_id }),
                ),
                "duplicate",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "delivery ledger unavailable");
            return (
                Reply::error(503, "delivery ledger unavailable; redeliver later"),
                "ledger_error",
            );
        }
    };
    let published = match entries(&publication) {
        Ok(entries) => deps.bus.publish_entries(entries).await,
        Err(e) => Err(e),
    };
    match published {
        Ok(event_ids) => {
            if let Err(e) = deps.ledger.complete(claimed, &holder).await {
                // Published: the claim expires at the deadline, and a
                // redelivery after that publishes the same correlation id
                // again, which start-build starts only once.
                tracing::warn!(error = %e, "could not mark the delivery accepted");
            }
            tracing::debug!(
                event_ids = %event_ids.join(","),
                detail_type = publication.detail_type(),
                "published"
            );
            (publication.reply(), publication.outcome())
        }
        Err(e) => {
            // Let the user's redelivery through: it is not a duplicate of
            // something that was never published.
            if let Err(release) = deps.ledger.release(claimed).await {
                tracing::error!(error = %release, "could not release the delivery marker; a redelivery will be taken for a duplicate");
            }
            let status = if matches!(
                e,
                PublishError::TooLarge { .. } | PublishError::Serialise { .. }
            ) {
                500
            } else {
                502
            };
            tracing::error!(error = %e, "publish failed");
            (
                Reply::error(
                    status,
                    format!(
                        "could not publish {}; redeliver later",
                        publication.detail_type()
                    ),
                ),
                "publish_failed",
            )
        }
    }
}

/// The events a publication comes to: one, or a named build's each.
pub fn entries(publication: &Publication) -> Result<Vec<Entry>, PublishError> {
    publication
        .items()
        .into_iter()
        .filter_map(|p| match p {
            Publication::Requested(e) => Some(Entry::new(e)),
            Publication::Skipped(e) => Some(Entry::new(e)),
            Publication::CheckRun(e) => Some(Entry::new(e)),
            // `items` never nests.
            Publication::Members(_) => None,
        })
        .collect()
}
