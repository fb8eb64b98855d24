//! The webhook function's logic: from an HTTP request to an answer for
//! GitHub and, for a push or pull request, one event on the bus.
//!
//! [`process`] is the pure part (size, signature, parse, normalise, trigger
//! rules) and is what the tests and the benchmark drive; [`handle`] adds
//! the I/O around it: secrets and configuration from SSM, the delivery
//! ledger in S3, EventBridge.

use std::time::Duration;

use http::HeaderMap;
use serde_json::json;

use gantry_shared::aws::bus::{EventBus, PublishError};
use gantry_shared::aws::config_source::ConfigSource;
use gantry_shared::aws::ledger::{Claim, DeliveryLedger};
use gantry_shared::aws::secrets::{SecretCache, SecretError};
use gantry_shared::config::{Config, ForkPolicy};
use gantry_shared::events::{BuildRequested, BuildSkipped, VERSION};
use gantry_shared::github::headers;
use gantry_shared::github::normalise::{Normalised, normalise_pull_request, normalise_push};
use gantry_shared::github::payload::{self, PayloadError, PingEvent, PullRequestEvent, PushEvent};
use gantry_shared::github::signature::{SignatureError, verify_signature};
use gantry_shared::trigger::{self, Decision};

/// Lambda's own limit for a function URL request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// After a signature mismatch, re-read the secrets if the cached ones are
/// older than this: a rotation then takes effect on the next delivery,
/// while forged requests cannot make us call SSM more than once per period.
const REFRESH_AFTER_MISMATCH: Duration = Duration::from_secs(30);

/// Everything the handler needs, built once per cold start.
pub struct Deps {
    pub secrets: SecretCache,
    pub config: ConfigSource,
    pub ledger: DeliveryLedger,
    pub bus: EventBus,
    pub max_body_bytes: usize,
}

/// The answer to GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// JSON; `outcome` always, plus a `reason` or ids.
    pub body: String,
}

impl Reply {
    fn new(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            body: body.to_string(),
        }
    }

    fn refused(status: u16, reason: impl std::fmt::Display) -> Self {
        Reply::new(
            status,
            json!({ "outcome": "refused", "reason": reason.to_string() }),
        )
    }

    fn error(status: u16, reason: impl std::fmt::Display) -> Self {
        Reply::new(
            status,
            json!({ "outcome": "error", "reason": reason.to_string() }),
        )
    }
}

/// An event to publish for a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    Requested(BuildRequested),
    Skipped(BuildSkipped),
}

impl Publication {
    pub fn source_mut(&mut self) -> &mut gantry_shared::events::BuildSource {
        match self {
            Publication::Requested(e) => &mut e.source,
            Publication::Skipped(e) => &mut e.source,
        }
    }

    pub fn detail_type(&self) -> &'static str {
        use gantry_shared::events::Detail;
        match self {
            Publication::Requested(_) => BuildRequested::DETAIL_TYPE,
            Publication::Skipped(_) => BuildSkipped::DETAIL_TYPE,
        }
    }

    /// The answer once the event is on the bus.
    fn reply(&self) -> Reply {
        match self {
            Publication::Requested(e) => Reply::new(
                202,
                json!({ "outcome": "accepted", "correlation_id": e.correlation_id, "project": e.project }),
            ),
            Publication::Skipped(e) => Reply::new(
                202,
                json!({ "outcome": "skipped", "reason": e.reason.message, "correlation_id": e.correlation_id }),
            ),
        }
    }
}

/// What the pure part made of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Answer at once; nothing to publish.
    Reply(Reply),
    /// Publish this event (once per delivery id), then answer.
    Publish {
        delivery_id: String,
        publication: Box<Publication>,
    },
}

/// What the log line says about a delivery (never the payload).
#[derive(Debug, Default)]
pub struct Summary {
    pub event: Option<String>,
    pub delivery_id: Option<String>,
    pub repository: Option<String>,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// GitHub's delivery ids are GUIDs; anything else is not from GitHub, and
/// the id becomes an S3 key, so keep it to a safe alphabet.
fn valid_delivery_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The pure handler: size, signature, then (only if both pass) parsing,
/// normalising and the trigger rules.
pub fn process<S: AsRef<[u8]>>(
    secrets: &[S],
    config: &Config,
    headers: &HeaderMap,
    body: &[u8],
    max_body_bytes: usize,
    summary: &mut Summary,
) -> Assessment {
    // Named in the log line even when refused, so a failed delivery in
    // GitHub's list can be found; taken only if it has the expected shape.
    if let Some(id) = header(headers, headers::DELIVERY).filter(|id| valid_delivery_id(id)) {
        summary.delivery_id = Some(id.to_owned());
    }
    if let Some(reply) = too_large(body.len(), max_body_bytes) {
        return Assessment::Reply(reply);
    }
    if let Err(e) = verify_signature(secrets, header(headers, headers::SIGNATURE_256), body) {
        let status = if e == SignatureError::NoSecret {
            503
        } else {
            401
        };
        return Assessment::Reply(Reply::refused(status, e));
    }
    // Verified: from here on the request is GitHub's.
    let Some(event) = header(headers, headers::EVENT) else {
        return Assessment::Reply(Reply::refused(400, "missing X-GitHub-Event header"));
    };
    summary.event = Some(event.chars().take(64).collect());
    let delivery_id = header(headers, headers::DELIVERY).unwrap_or_default();
    if !valid_delivery_id(delivery_id) {
        return Assessment::Reply(Reply::refused(
            400,
            "missing or malformed X-GitHub-Delivery header",
        ));
    }
    summary.delivery_id = Some(delivery_id.to_owned());

    if !matches!(event, "ping" | "push" | "pull_request") {
        return Assessment::Reply(Reply::new(
            202,
            json!({ "outcome": "ignored", "reason": format!("ignored: {}", summary.event.as_deref().unwrap_or_default()) }),
        ));
    }
    let form_payload;
    let json_bytes: &[u8] = if is_form(headers) {
        match form_field(body) {
            Some(p) => {
                form_payload = p;
                form_payload.as_bytes()
            }
            None => {
                return Assessment::Reply(Reply::refused(
                    400,
                    "form-encoded delivery without a `payload` field",
                ));
            }
        }
    } else {
        body
    };
    match assess(config, event, delivery_id, json_bytes, summary) {
        Ok(a) => a,
        Err(e) => Assessment::Reply(Reply::refused(400, e)),
    }
}

fn too_large(len: usize, max: usize) -> Option<Reply> {
    (len > max).then(|| {
        Reply::refused(
            413,
            format!("payload of {len} bytes is over the {max}-byte limit"),
        )
    })
}

fn is_form(headers: &HeaderMap) -> bool {
    header(headers, "content-type").is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    })
}

fn form_field(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
}

fn assess(
    config: &Config,
    event: &str,
    delivery_id: &str,
    json: &[u8],
    summary: &mut Summary,
) -> Result<Assessment, PayloadError> {
    let normalised = match event {
        "ping" => {
            let ping: PingEvent<'_> = payload::parse("ping", json)?;
            return Ok(Assessment::Reply(Reply::new(
                200,
                json!({ "outcome": "pong", "hook_id": ping.hook_id, "zen": ping.zen }),
            )));
        }
        "push" => {
            let push: PushEvent<'_> = payload::parse("push", json)?;
            summary.repository = Some(push.repository.full_name.to_string());
            normalise_push(&push)?
        }
        _ => {
            let pr: PullRequestEvent<'_> = payload::parse("pull_request", json)?;
            summary.repository = Some(pr.repository.full_name.to_string());
            normalise_pull_request(&pr)?
        }
    };
    let source = match normalised {
        Normalised::Ignore(reason) => {
            return Ok(Assessment::Reply(Reply::new(
                202,
                json!({ "outcome": "ignored", "reason": reason }),
            )));
        }
        Normalised::Build(source) => *source,
    };
    let Some(rules) = config.repository(&source.repository.full_name) else {
        return Ok(Assessment::Reply(Reply::new(
            202,
            json!({
                "outcome": "ignored",
                "reason": format!("repository {} is not configured in gantry.yaml", source.repository.full_name),
            }),
        )));
    };
    let mut source = source;
    if let Some(pr) = source.pull_request.as_mut()
        && pr.action == "labeled"
    {
        // A label builds only when it approves a fork's head commit under
        // the `approval` fork policy; every other label is noise.
        let approves = source.fork
            && rules.forks == ForkPolicy::Approval
            && pr.label.as_deref() == Some(rules.approval_label.as_str());
        if !approves {
            return Ok(Assessment::Reply(Reply::new(
                202,
                json!({
                    "outcome": "ignored",
                    "reason": format!(
                        "pull_request action `labeled` (label `{}`) approves nothing: only the fork approval label builds",
                        pr.label.as_deref().unwrap_or_default()
                    ),
                }),
            )));
        }
        pr.approved_by = source.sender.clone();
    }
    let correlation_id = delivery_id.to_owned();
    let publication = match trigger::decide(rules, &source) {
        Decision::Build => Publication::Requested(BuildRequested {
            v: VERSION,
            correlation_id,
            project: rules.project.clone(),
            buildspec: rules.buildspec.clone(),
            source,
        }),
        Decision::Skip(reason) => Publication::Skipped(BuildSkipped {
            v: VERSION,
            correlation_id,
            project: rules.project.clone(),
            reason,
            source,
        }),
    };
    Ok(Assessment::Publish {
        delivery_id: delivery_id.to_owned(),
        publication: Box::new(publication),
    })
}

/// The whole handler: [`process`] plus secrets, configuration, the ledger
/// and the bus. Logs one line per delivery.
pub async fn handle(deps: &Deps, headers: &HeaderMap, body: &[u8]) -> Reply {
    let mut summary = Summary::default();
    let (reply, outcome) = handle_inner(deps, headers, body, &mut summary).await;
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

async fn handle_inner(
    deps: &Deps,
    headers: &HeaderMap,
    body: &[u8],
    summary: &mut Summary,
) -> (Reply, &'static str) {
    // Refuse the oversized before any I/O.
    if let Some(reply) = too_large(body.len(), deps.max_body_bytes) {
        return (reply, "too_large");
    }
    let secrets = match deps.secrets.get().await {
        Ok(s) => s,
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
    let mut assessment = process(
        &secrets,
        &config,
        headers,
        body,
        deps.max_body_bytes,
        summary,
    );
    if matches!(&assessment, Assessment::Reply(r) if r.status == 401)
        && let Ok(fresh) = deps.secrets.get_fresher_than(REFRESH_AFTER_MISMATCH).await
        && !std::sync::Arc::ptr_eq(&fresh, &secrets)
    {
        assessment = process(&fresh, &config, headers, body, deps.max_body_bytes, summary);
    }
    let (delivery_id, publication) = match assessment {
        Assessment::Reply(reply) => {
            let outcome = match reply.status {
                200 => "pong",
                202 => "ignored",
                401 => "unauthorized",
                413 => "too_large",
                _ => "bad_request",
            };
            return (reply, outcome);
        }
        Assessment::Publish {
            delivery_id,
            mut publication,
        } => {
            publication.source_mut().received_at_ms = gantry_shared::events::now_ms();
            (delivery_id, publication)
        }
    };
    match deps
        .ledger
        .claim(&delivery_id, publication.detail_type())
        .await
    {
        Ok(Claim::New) => {}
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
    }
    let published = match publication.as_ref() {
        Publication::Requested(e) => deps.bus.publish(e).await,
        Publication::Skipped(e) => deps.bus.publish(e).await,
    };
    match published {
        Ok(event_id) => {
            tracing::debug!(
                event_id,
                detail_type = publication.detail_type(),
                "published"
            );
            let outcome = match publication.as_ref() {
                Publication::Requested(_) => "accepted",
                Publication::Skipped(_) => "skipped",
            };
            (publication.reply(), outcome)
        }
        Err(e) => {
            // Let the user's redelivery through: it is not a duplicate of
            // something that was never published.
            if let Err(release) = deps.ledger.release(&delivery_id).await {
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
