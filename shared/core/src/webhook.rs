//! The webhook's decisions, with no I/O: from an HTTP request (headers and
//! the raw body) to an answer for GitHub and, for a push or pull request,
//! the one event to publish. Size first, then the signature over the exact
//! bytes, and only if both pass: parsing, the secret's binding to the
//! repository, the replay window, normalising and the trigger rules.
//!
//! The webhook function adds the I/O around it (secrets and configuration
//! from SSM, the delivery ledger, the bus); the fuzz target and the
//! benchmark drive it directly.

use std::time::Duration;

use http::HeaderMap;
use serde_json::json;

use crate::config::{Config, ForkPolicy, RepositoryRules};
use crate::events::{
    BuildRequested, BuildSkipped, BuildSource, CheckRequest, CheckRunRequested, VERSION,
};
use crate::github::headers;
use crate::github::normalise::{Normalised, normalise_pull_request, normalise_push};
use crate::github::payload::{
    self, CheckRunEvent, CheckSuiteEvent, PayloadError, PingEvent, PullRequestEvent, PushEvent,
};
use crate::github::signature::{SignatureError, verify_signature};
use crate::trigger::{self, Decision};

/// The `X-GitHub-Event` names the webhook acts on; every other is
/// answered 202 `ignored`.
pub mod events {
    pub const PING: &str = "ping";
    pub const PUSH: &str = "push";
    pub const PULL_REQUEST: &str = "pull_request";
    /// App mode: Re-run and the buttons of Gantry's check runs.
    pub const CHECK_RUN: &str = "check_run";
    /// App mode: Re-run all checks.
    pub const CHECK_SUITE: &str = "check_suite";
    /// The events Gantry reads; any other is answered "ignored".
    pub const HANDLED: [&str; 5] = [PING, PUSH, PULL_REQUEST, CHECK_RUN, CHECK_SUITE];
}

/// Lambda's own limit for a function URL request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// What a webhook is installed on, as its unsigned headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub id: u64,
    pub kind: TargetKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Repository,
    Organization,
}

impl Target {
    /// From `X-GitHub-Hook-Installation-Target-ID` / `-Type`; only
    /// repositories and organisations can have their own secret.
    pub fn from_headers(headers: &HeaderMap) -> Option<Target> {
        let id = header(headers, headers::TARGET_ID)?.trim().parse().ok()?;
        let kind = match header(headers, headers::TARGET_TYPE)?.trim() {
            "repository" => TargetKind::Repository,
            "organization" => TargetKind::Organization,
            _ => return None,
        };
        Some(Target { id, kind })
    }
}

/// What a verified delivery is checked against besides its signature.
pub struct Checks<'a> {
    pub max_body_bytes: usize,
    /// Refuse a delivery whose signed time is older than this.
    pub replay_window: Option<Duration>,
    pub now_ms: u64,
    /// `Some` when the secrets verified with are this target's own: the
    /// body must then be about it.
    pub target: Option<Target>,
    /// Does this repository or organisation id have its own secret? A
    /// delivery about one, signed with the shared secret, is refused.
    pub has_own_secret: &'a dyn Fn(u64) -> bool,
}

impl Checks<'_> {
    /// The shared secret only, no replay window.
    pub fn shared(max_body_bytes: usize) -> Checks<'static> {
        Checks {
            max_body_bytes,
            replay_window: None,
            now_ms: 0,
            target: None,
            has_own_secret: &|_| false,
        }
    }
}

/// The answer to GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// JSON; `outcome` always, plus a `reason` or ids.
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            body: body.to_string(),
        }
    }

    pub fn refused(status: u16, reason: impl std::fmt::Display) -> Self {
        Reply::new(
            status,
            json!({ "outcome": "refused", "reason": reason.to_string() }),
        )
    }

    pub fn error(status: u16, reason: impl std::fmt::Display) -> Self {
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
    /// A Re-run or a button of a Gantry check run.
    CheckRun(CheckRunRequested),
    /// The named builds of a repository's `builds:`: a request or a skip
    /// each (never nested), published together.
    Members(Vec<Publication>),
}

impl Publication {
    /// The build sources, for a delivery that has them.
    pub fn sources_mut(&mut self) -> Vec<&mut crate::events::BuildSource> {
        match self {
            Publication::Requested(e) => vec![&mut e.source],
            Publication::Skipped(e) => vec![&mut e.source],
            Publication::CheckRun(_) => Vec::new(),
            Publication::Members(items) => items.iter_mut().flat_map(|p| p.sources_mut()).collect(),
        }
    }

    /// The events to publish, in order.
    pub fn items(&self) -> Vec<&Publication> {
        match self {
            Publication::Members(items) => items.iter().collect(),
            one => vec![one],
        }
    }

    pub fn detail_type(&self) -> &'static str {
        use crate::events::Detail;
        match self {
            Publication::Requested(_) => BuildRequested::DETAIL_TYPE,
            Publication::Skipped(_) => BuildSkipped::DETAIL_TYPE,
            Publication::CheckRun(_) => CheckRunRequested::DETAIL_TYPE,
            Publication::Members(items) => items
                .iter()
                .find(|p| matches!(p, Publication::Requested(_)))
                .or(items.first())
                .map_or(BuildRequested::DETAIL_TYPE, |p| p.detail_type()),
        }
    }

    /// The log line's outcome word.
    pub fn outcome(&self) -> &'static str {
        match self {
            Publication::Requested(_) => "accepted",
            Publication::Skipped(_) => "skipped",
            Publication::CheckRun(_) => "check_run_requested",
            Publication::Members(items) => {
                if items.iter().any(|p| matches!(p, Publication::Requested(_))) {
                    "accepted"
                } else {
                    "skipped"
                }
            }
        }
    }

    /// The answer once the event is on the bus.
    pub fn reply(&self) -> Reply {
        match self {
            Publication::Requested(e) => Reply::new(
                202,
                json!({ "outcome": "accepted", "correlation_id": e.correlation_id, "project": e.project }),
            ),
            Publication::Skipped(e) => Reply::new(
                202,
                json!({ "outcome": "skipped", "reason": e.reason.message, "correlation_id": e.correlation_id }),
            ),
            Publication::CheckRun(e) => Reply::new(
                202,
                json!({ "outcome": "accepted", "correlation_id": e.correlation_id, "request": e.request }),
            ),
            Publication::Members(items) => {
                let builds: Vec<serde_json::Value> = items
                    .iter()
                    .map(|p| match p {
                        Publication::Requested(e) => json!({
                            "outcome": "accepted",
                            "build": e.source.member.as_ref().map(|m| m.name.as_str()),
                            "correlation_id": e.correlation_id,
                            "project": e.project,
                        }),
                        Publication::Skipped(e) => json!({
                            "outcome": "skipped",
                            "build": e.source.member.as_ref().map(|m| m.name.as_str()),
                            "correlation_id": e.correlation_id,
                            "reason": e.reason.message,
                        }),
                        other => serde_json::from_str(&other.reply().body)
                            .unwrap_or(serde_json::Value::Null),
                    })
                    .collect();
                Reply::new(202, json!({ "outcome": self.outcome(), "builds": builds }))
            }
        }
    }
}

/// The correlation id of the named build `member` of a delivery (or a
/// manual or scheduled request) `correlation_id`: `<id>.<member>`, so that
/// every log line of it is found by the delivery's id.
pub fn member_correlation_id(correlation_id: &str, member: &str) -> String {
    format!("{correlation_id}.{member}")
}

/// What `source` asks of `rules`: a request or a skip for each named build
/// of `builds:` (all of them, or those `only` names), or for the one build.
/// A pull request held to path filters carries them on its request, for
/// validate-buildspec to apply once it has read the files from GitHub.
pub fn fan_out(
    rules: &RepositoryRules,
    source: BuildSource,
    correlation_id: &str,
    only: &[String],
) -> Publication {
    let of: Vec<String> = rules
        .builds
        .iter()
        .filter(|m| only.is_empty() || only.contains(&m.name))
        .map(|m| m.name.clone())
        .collect();
    let one = |member: Option<&crate::config::BuildMember>, mut source: BuildSource| {
        source.compute = match member {
            Some(m) => m.compute.or(&rules.compute),
            None => rules.compute.clone(),
        };
        let (project, buildspec, decision, correlation_id) = match member {
            Some(m) => {
                source.member = Some(m.event_member(&of));
                (
                    m.project.clone(),
                    m.buildspec.clone(),
                    trigger::decide_member(rules, m, &source),
                    member_correlation_id(correlation_id, &m.name),
                )
            }
            None => (
                rules.project.clone(),
                rules.buildspec.clone(),
                trigger::decide(rules, &source),
                correlation_id.to_owned(),
            ),
        };
        match decision {
            Decision::Build => {
                let paths = (source.trigger == crate::events::Trigger::PullRequest
                    && source.changed_paths.truncated)
                    .then(|| trigger::path_rules(rules, member))
                    .flatten();
                Publication::Requested(BuildRequested {
                    v: VERSION,
                    correlation_id: correlation_id.into(),
                    project,
                    buildspec,
                    source,
                    paths,
                })
            }
            Decision::Skip(reason) => Publication::Skipped(BuildSkipped {
                v: VERSION,
                correlation_id: correlation_id.into(),
                project,
                reason,
                source,
            }),
        }
    };
    if rules.builds.is_empty() {
        return one(None, source);
    }
    Publication::Members(
        rules
            .builds
            .iter()
            .filter(|m| only.is_empty() || only.contains(&m.name))
            .map(|m| one(Some(m), source.clone()))
            .collect(),
    )
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

pub fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// GitHub's delivery ids are GUIDs; anything else is not from GitHub, and
/// the id becomes an S3 key, so keep it to a safe alphabet.
fn valid_delivery_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The pure handler with the shared secret and no replay window: size,
/// signature, then (only if both pass) parsing, normalising and the
/// trigger rules.
pub fn process<S: AsRef<[u8]>>(
    secrets: &[S],
    config: &Config,
    headers: &HeaderMap,
    body: &[u8],
    max_body_bytes: usize,
    summary: &mut Summary,
) -> Assessment {
    process_checked(
        secrets,
        config,
        headers,
        body,
        &Checks::shared(max_body_bytes),
        summary,
    )
}

/// The pure handler: size, signature, then (only if both pass) parsing,
/// the target the secret belongs to, the replay window, normalising and
/// the trigger rules.
pub fn process_checked<S: AsRef<[u8]>>(
    secrets: &[S],
    config: &Config,
    headers: &HeaderMap,
    body: &[u8],
    checks: &Checks<'_>,
    summary: &mut Summary,
) -> Assessment {
    let max_body_bytes = checks.max_body_bytes;
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

    if !events::HANDLED.contains(&event) {
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
    match assess(config, checks, event, delivery_id, json_bytes, summary) {
        Ok(a) => a,
        Err(e) => Assessment::Reply(Reply::refused(400, e)),
    }
}

fn ignored(reason: impl Into<String>) -> Assessment {
    Assessment::Reply(Reply::new(
        202,
        json!({ "outcome": "ignored", "reason": reason.into() }),
    ))
}

/// A `check_run` or `check_suite` delivery: a Re-run or a button, for a
/// repository gantry.yaml configures, becomes a `Check Run Requested`;
/// everything else (the runs' own `created` and `completed`, another
/// App's suites) is ignored. Who may do what is build-events' to check,
/// with GitHub: the payload is only GitHub's word of who pressed.
fn check_request(
    config: &Config,
    checks: &Checks<'_>,
    event: &str,
    delivery_id: &str,
    json: &[u8],
    summary: &mut Summary,
) -> Result<Assessment, PayloadError> {
    let (repository, sender, installation, request) = if event == events::CHECK_RUN {
        let e: CheckRunEvent<'_> = payload::parse(events::CHECK_RUN, json)?;
        summary.repository = Some(e.repository.full_name.to_string());
        if let Some(reply) = secret_binding(checks, e.repository.id, e.repository.owner.id) {
            return Ok(Assessment::Reply(reply));
        }
        let Some(external_id) = e
            .check_run
            .external_id
            .as_deref()
            .filter(|x| crate::github::checks::parse_external_id(x).is_some())
        else {
            return Ok(ignored("not a Gantry check run (no Gantry external_id)"));
        };
        let request = match (e.action.as_ref(), &e.requested_action) {
            ("rerequested", _) => CheckRequest::Rerun {
                check_run_id: e.check_run.id,
                external_id: external_id.to_owned(),
            },
            ("requested_action", Some(action)) => CheckRequest::Action {
                check_run_id: e.check_run.id,
                external_id: external_id.to_owned(),
                identifier: crate::events::cap(&action.identifier, 64),
            },
            (action, _) => {
                return Ok(ignored(format!(
                    "check_run action `{}` asks nothing of Gantry",
                    crate::events::cap(action, 64)
                )));
            }
        };
        (
            e.repository.full_name.to_string(),
            e.sender.handle().to_owned(),
            e.installation.map(|i| i.id),
            request,
        )
    } else {
        let e: CheckSuiteEvent<'_> = payload::parse(events::CHECK_SUITE, json)?;
        summary.repository = Some(e.repository.full_name.to_string());
        if let Some(reply) = secret_binding(checks, e.repository.id, e.repository.owner.id) {
            return Ok(Assessment::Reply(reply));
        }
        if e.action != "rerequested" {
            return Ok(ignored(format!(
                "check_suite action `{}` asks nothing of Gantry",
                crate::events::cap(&e.action, 64)
            )));
        }
        (
            e.repository.full_name.to_string(),
            e.sender.handle().to_owned(),
            e.installation.map(|i| i.id),
            CheckRequest::RerunSuite {
                check_suite_id: e.check_suite.id,
            },
        )
    };
    if let Some(reason) = config.refuses_installation(installation) {
        return Ok(ignored(reason));
    }
    if config.repository(&repository).is_none() {
        return Ok(ignored(format!(
            "repository {repository} is not configured in gantry.yaml"
        )));
    }
    Ok(Assessment::Publish {
        delivery_id: delivery_id.to_owned(),
        publication: Box::new(Publication::CheckRun(CheckRunRequested {
            v: VERSION,
            correlation_id: delivery_id.into(),
            repository,
            installation_id: installation,
            sender,
            request,
        })),
    })
}

pub fn too_large(len: usize, max: usize) -> Option<Reply> {
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

/// A verified delivery about repository `repo_id` of owner `owner_id`,
/// signed with the secret [`Checks`] names: refused (403) if that secret
/// is not the one for this repository.
fn secret_binding(checks: &Checks<'_>, repo_id: u64, owner_id: u64) -> Option<Reply> {
    let refuse = |reason: String| Some(Reply::refused(403, reason));
    match checks.target {
        Some(Target {
            id,
            kind: TargetKind::Repository,
        }) if id != repo_id => refuse(format!(
            "signed with the webhook secret of repository {id}, but the delivery is about repository {repo_id}"
        )),
        Some(Target {
            id,
            kind: TargetKind::Organization,
        }) if id != owner_id => refuse(format!(
            "signed with the webhook secret of organization {id}, but the delivery is about a repository of {owner_id}"
        )),
        Some(_) => None,
        None if (checks.has_own_secret)(repo_id) || (checks.has_own_secret)(owner_id) => {
            refuse(format!(
                "repository {repo_id} has its own webhook secret; a delivery about it signed with the shared secret is refused"
            ))
        }
        None => None,
    }
}

/// Refused (403) if the delivery was signed longer ago than the window.
fn replay_check(checks: &Checks<'_>, signed_at_ms: u64, what: &str) -> Option<Reply> {
    let window = checks.replay_window?;
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    if signed_at_ms == 0 {
        return Some(Reply::refused(
            403,
            format!("the payload carries no {what}; with a replay window set, a delivery must"),
        ));
    }
    let age_ms = checks.now_ms.saturating_sub(signed_at_ms);
    (age_ms > window_ms).then(|| {
        Reply::refused(
            403,
            format!(
                "signed {} s ago ({what}), longer than the replay window of {} s: a replayed delivery is refused",
                age_ms / 1000,
                window_ms / 1000
            ),
        )
    })
}

fn assess(
    config: &Config,
    checks: &Checks<'_>,
    event: &str,
    delivery_id: &str,
    json: &[u8],
    summary: &mut Summary,
) -> Result<Assessment, PayloadError> {
    let normalised = match event {
        events::PING => {
            let ping: PingEvent<'_> = payload::parse(events::PING, json)?;
            return Ok(Assessment::Reply(Reply::new(
                200,
                json!({ "outcome": "pong", "hook_id": ping.hook_id, "zen": ping.zen }),
            )));
        }
        events::PUSH => {
            let push: PushEvent<'_> = payload::parse(events::PUSH, json)?;
            summary.repository = Some(push.repository.full_name.to_string());
            let repo = &push.repository;
            if let Some(reply) = secret_binding(checks, repo.id, repo.owner.id).or_else(|| {
                replay_check(
                    checks,
                    repo.pushed_at.0.unwrap_or(0),
                    "repository.pushed_at",
                )
            }) {
                return Ok(Assessment::Reply(reply));
            }
            normalise_push(&push)?
        }
        events::CHECK_RUN | events::CHECK_SUITE => {
            return check_request(config, checks, event, delivery_id, json, summary);
        }
        _ => {
            let pr: PullRequestEvent<'_> = payload::parse(events::PULL_REQUEST, json)?;
            summary.repository = Some(pr.repository.full_name.to_string());
            let repo = &pr.repository;
            if let Some(reply) = secret_binding(checks, repo.id, repo.owner.id).or_else(|| {
                replay_check(
                    checks,
                    pr.pull_request.updated_at.0.unwrap_or(0),
                    "pull_request.updated_at",
                )
            }) {
                return Ok(Assessment::Reply(reply));
            }
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
    if let Some(reason) = config.refuses_installation(source.installation_id) {
        return Ok(ignored(reason));
    }
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
    let publication = fan_out(rules, source, delivery_id, &[]);
    Ok(Assessment::Publish {
        delivery_id: delivery_id.to_owned(),
        publication: Box::new(publication),
    })
}
