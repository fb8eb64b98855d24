//! The schedule Lambda: one EventBridge rule (`cron(* * * * ? *)`) invokes
//! it at the start of every minute. For
//! each `schedules:` entry of gantry.yaml that fires in the minute the
//! event names (EventBridge's `time`, so a retried invocation evaluates
//! the minute it was meant for), it resolves the branch's head through
//! GitHub and publishes a `Build Requested` (trigger `schedule`), or one per
//! named build, exactly as the webhook would for a push.
//!
//! Two guards keep a schedule from piling up builds:
//! - a claim per schedule and minute (the lease protocol of the other
//!   effects): overlapping or retried invocations request it once, and an
//!   invocation that dies holding the claim leaves it to be taken over;
//! - the schedule's state: the correlation ids of its last firing. While
//!   one of them has not reached a final status (build-events marks each
//!   end), the schedule does not fire again; after
//!   [`gantry_core::schedule::PENDING_LIMIT_MS`] a lost build no longer
//!   holds it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_aws::bus::{Entry, EventBus, PublishError};
use gantry_aws::records::Acquired;
use gantry_aws::report::{ReportError, Reporter, ReporterSettings};
use gantry_core::config::{Config, RepositoryRules};
use gantry_core::deadline::Deadline;
use gantry_core::events::{BuildSource, RunRequest, Trigger, now_ms};
use gantry_core::records::{Effect, Holder};
use gantry_core::schedule::{ScheduleId, ScheduleRule, ScheduleState, done_key, event_minute};
use gantry_core::webhook::{Publication, fan_out};
use serde::Deserialize;

pub use gantry_core::settings::SettingsError;

/// The function's `Timeout` in template.yaml (a test holds them equal).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The most one schedule's firing takes when every GitHub request takes
/// `github` and every AWS call `aws`: the claim, the previous firing's
/// state and its end, the repository and the branch's head, the
/// publication, the new state and the claim's completion. A schedule is
/// claimed only with this much time left; one must fit [`TIMEOUT`].
pub fn per_schedule(github: Duration, aws: Duration) -> Duration {
    github.saturating_mul(2) + aws.saturating_mul(6)
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// GitHub, gantry.yaml and the records, as build-events has them.
    pub reporter: ReporterSettings,
    pub event_bus: String,
}

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let event_bus = gantry_core::settings::Env(&var).or("EVENT_BUS_NAME", "gantry");
        Ok(Settings {
            reporter: ReporterSettings::from_env(&var)?,
            event_bus,
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        Deps {
            // Schedule reports no finished build: no CodeBuild client at init.
            reporter: self.reporter.reporter_codebuild_on_first_use(sdk),
            bus: EventBus::new(aws_sdk_eventbridge::Client::new(sdk), &self.event_bus),
        }
    }
}

pub struct Deps {
    pub reporter: Reporter,
    pub bus: EventBus,
}

/// The scheduled event, as far as it matters: its minute.
#[derive(Debug, Clone, Deserialize)]
pub struct Tick {
    /// RFC 3339; absent (a test's or a person's invocation): now.
    #[serde(default)]
    pub time: Option<String>,
}

impl Tick {
    pub fn at(time: DateTime<Utc>) -> Tick {
        Tick {
            time: Some(time.to_rfc3339()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("unreadable event time {0:?}")]
    Time(String),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("{failed} of {fired} schedules could not be requested; first: {first}")]
    Schedules {
        failed: usize,
        fired: usize,
        first: String,
    },
}

impl gantry_core::failure::ErrorKind for ScheduleError {
    fn kind(&self) -> &'static str {
        match self {
            ScheduleError::Time(_) => "schedule.UnreadableEvent",
            ScheduleError::Report(_) => "schedule.ConfigUnavailable",
            ScheduleError::Schedules { .. } => "schedule.NotRequested",
        }
    }
}

/// What became of one schedule in the minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// Requested: the correlation ids.
    Requested(Vec<String>),
    /// Another invocation requested it in this minute already.
    Duplicate,
    /// Its previous firing's builds have not all finished.
    Pending(Vec<String>),
}

/// What a tick did: each schedule that fired, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub minute: i64,
    pub fired: Vec<(String, Fired)>,
}

/// One tick, as a local driver (`gantry dev`, `gantry tick`, the tests)
/// runs it: with the function's [`TIMEOUT`], or what one schedule needs
/// with the AWS timeouts these deps were built with, if longer (the local
/// stack gives the moto server 30 s a call): room for two schedules then.
pub async fn tick(deps: &Deps, event: &Tick) -> Result<Summary, ScheduleError> {
    let budget = per_schedule(deps.reporter.github.timeout(), deps.reporter.aws_timeout);
    tick_until(
        deps,
        event,
        Deadline::after(TIMEOUT.max(budget.saturating_mul(2))),
    )
    .await
}

/// One tick: every schedule firing in the event's minute, each on its own
/// (one failing does not keep the others from building; the invocation
/// then fails, and its retry finds the others done).
pub async fn tick_until(
    deps: &Deps,
    event: &Tick,
    deadline: Deadline,
) -> Result<Summary, ScheduleError> {
    let minute = match &event.time {
        Some(time) => event_minute(time).ok_or_else(|| ScheduleError::Time(time.clone()))?,
        None => i64::try_from(now_ms() / 60_000).unwrap_or_default() * 60,
    };
    let at = DateTime::<Utc>::from_timestamp(minute, 0)
        .ok_or_else(|| ScheduleError::Time(minute.to_string()))?;
    let config = deps
        .reporter
        .config
        .get()
        .await
        .map_err(ReportError::from)?;
    let holder = Holder {
        id: format!("schedule@{minute}@{}", deadline.epoch_ms()),
        deadline,
    };
    let mut summary = Summary {
        minute,
        fired: Vec::new(),
    };
    let mut failures = Vec::new();
    let due = due(&config, at);
    let budget = per_schedule(deps.reporter.github.timeout(), deps.reporter.aws_timeout);
    for (rules, schedule) in &due {
        let id = ScheduleId::new(&rules.name, &schedule.name);
        // Left to Lambda's retry of this same minute, which finds what
        // fired already claimed.
        if let Err(e) = holder.deadline.require(budget, "fire a schedule") {
            failures.push(format!("{}: {e}", id.as_str()));
            continue;
        }
        match fire(deps, &holder, rules, schedule, &id, minute).await {
            Ok(fired) => {
                tracing::info!(
                    schedule = id.as_str(),
                    minute,
                    outcome = outcome(&fired),
                    correlation_ids = %match &fired {
                        Fired::Requested(ids) | Fired::Pending(ids) => ids.join(","),
                        Fired::Duplicate => String::new(),
                    },
                    "schedule"
                );
                summary.fired.push((id.as_str().to_owned(), fired));
            }
            Err(e) => {
                tracing::error!(schedule = id.as_str(), minute, error = %e, outcome = "failed", "schedule");
                failures.push(format!("{}: {e}", id.as_str()));
            }
        }
    }
    if let Some(first) = failures.first() {
        return Err(ScheduleError::Schedules {
            failed: failures.len(),
            fired: due.len(),
            first: first.clone(),
        });
    }
    Ok(summary)
}

fn outcome(fired: &Fired) -> &'static str {
    match fired {
        Fired::Requested(_) => "requested",
        Fired::Duplicate => "duplicate",
        Fired::Pending(_) => "previous_pending",
    }
}

/// The schedules that fire at `at`, with their repository's rules.
pub fn due(config: &Config, at: DateTime<Utc>) -> Vec<(&RepositoryRules, &ScheduleRule)> {
    config
        .repositories
        .iter()
        .flat_map(|r| r.schedules.iter().map(move |s| (r, s)))
        .filter(|(_, s)| s.fires(at))
        .collect()
}

async fn fire(
    deps: &Deps,
    holder: &Holder,
    rules: &RepositoryRules,
    schedule: &ScheduleRule,
    id: &ScheduleId,
    minute: i64,
) -> Result<Fired, ReportError> {
    let records = &deps.reporter.records;
    let effect = Effect::Schedule {
        schedule: id.as_str(),
        minute,
    };
    let lease = match records.acquire(&effect, holder).await? {
        Acquired::Won(lease) => lease,
        Acquired::Done => return Ok(Fired::Duplicate),
        Acquired::Busy { holder: other, .. } => {
            return Err(ReportError::Busy {
                effect: "the schedule's firing",
                holder: other,
            });
        }
    };
    match request(deps, rules, schedule, id, minute).await {
        Ok(fired) => {
            records.complete(lease, holder).await?;
            Ok(fired)
        }
        Err(e) => {
            records.release(lease).await?;
            Err(e)
        }
    }
}

/// The builds of the previous firing that have not ended, if it is not
/// too old to wait for.
async fn still_pending(deps: &Deps, id: &ScheduleId) -> Result<Vec<String>, ReportError> {
    let records = &deps.reporter.records;
    let Some(state) = records.get_json::<ScheduleState>(&id.state_key()).await? else {
        return Ok(Vec::new());
    };
    if state.expired(now_ms()) {
        return Ok(Vec::new());
    }
    let mut pending = Vec::new();
    for correlation_id in &state.correlation_ids {
        if records
            .get_json::<serde_json::Value>(&done_key(correlation_id))
            .await?
            .is_none()
        {
            pending.push(correlation_id.clone());
        }
    }
    Ok(pending)
}

async fn request(
    deps: &Deps,
    rules: &RepositoryRules,
    schedule: &ScheduleRule,
    id: &ScheduleId,
    minute: i64,
) -> Result<Fired, ReportError> {
    let pending = still_pending(deps, id).await?;
    if !pending.is_empty() {
        return Ok(Fired::Pending(pending));
    }
    let repo = rules.name.as_str();
    let reporter = &deps.reporter;
    let token = reporter
        .credentials
        .token(
            None,
            repo,
            gantry_aws::github::app::Permissions::READ_CONTENTS,
        )
        .await?;
    let repository = reporter.github.repository(repo, token.as_ref()).await?;
    let branch = schedule
        .branch
        .clone()
        .or_else(|| repository.default_branch.clone())
        .unwrap_or_else(|| "main".to_owned());
    let sha = reporter
        .github
        .branch_head(repo, &branch, token.as_ref())
        .await?;
    let source = BuildSource::asked_for(
        Trigger::Schedule,
        repository,
        sha.into(),
        format!("refs/heads/{branch}"),
        RunRequest {
            by: format!("schedule {}", schedule.name),
            variables: Vec::new(),
            schedule: Some(id.as_str().to_owned()),
        },
        u64::try_from(minute).unwrap_or_default() * 1000,
    );
    let mut publication = fan_out(rules, source, &id.correlation_id(minute), &schedule.builds);
    if let (Some(project), Publication::Requested(e)) = (&schedule.project, &mut publication) {
        e.project = project.clone();
    }
    let correlation_ids: Vec<String> = publication
        .items()
        .into_iter()
        .filter_map(|p| match p {
            Publication::Requested(e) => Some(e.correlation_id.to_string()),
            _ => None,
        })
        .collect();
    let entries = publication
        .items()
        .into_iter()
        .filter_map(|p| match p {
            Publication::Requested(e) => Some(Entry::new(e)),
            Publication::Skipped(e) => Some(Entry::new(e)),
            _ => None,
        })
        .collect::<Result<Vec<Entry>, PublishError>>()?;
    deps.bus.publish_entries(entries).await?;
    // After publishing: a state naming builds never requested would hold
    // the schedule for two days. A crash in between lets the next minute
    // fire once more, the lesser harm.
    reporter
        .records
        .put_json(
            &id.state_key(),
            &ScheduleState {
                minute,
                requested_at_ms: now_ms(),
                correlation_ids: correlation_ids.clone(),
            },
        )
        .await?;
    Ok(Fired::Requested(correlation_ids))
}
