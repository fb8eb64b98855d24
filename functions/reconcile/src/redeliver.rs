//! Deliveries GitHub lost: GitHub never redelivers a failed webhook
//! delivery by itself, so each run lists the webhook's deliveries of the
//! last three days and asks GitHub to redeliver every event none of whose
//! attempts the webhook accepted, at most `REDELIVER_ATTEMPTS` times per
//! event (see [`gantry_core::github::deliveries`]).
//!
//! - App mode: the App's webhook (`/app/hook/deliveries`), with its JWT.
//! - Token mode: the webhooks of the repositories `gantry.yaml` names
//!   outright (no glob) whose URL is `WEBHOOK_URL` (the webhook function's
//!   URL); without `WEBHOOK_URL` token mode redelivers nothing.
//!
//! Safe by construction: a redelivery of a delivery the webhook did accept
//! (its answer lost on the way back) finds the webhook's delivery ledger
//! claimed and is answered `duplicate`, publishing nothing. And each
//! redelivery is claimed once per (event, redeliveries made so far) under
//! `redeliveries/…` in the artifact bucket, as a lease: two runs that see
//! the same failure ask for it once between them.

use std::sync::atomic::{AtomicBool, Ordering};

use gantry_aws::github::credentials::CredentialsError;
use gantry_aws::github::deliveries::{Hook, MAX_PAGES};
use gantry_aws::github::{app::Permissions, contents::GitHubError};
use gantry_aws::records::{Acquired, RecordError};
use gantry_aws::report::Reporter;
use gantry_core::github::deliveries::{
    DEFAULT_MAX_REDELIVERIES, Delivery, KEPT_MS, claim_key, is_literal_repository, same_url,
    to_redeliver,
};
use gantry_core::records::Holder;
use gantry_core::settings::{Env, SettingsError};

/// Redeliveries per event at most; 0 turns redelivery off.
pub const ATTEMPTS_VAR: &str = "REDELIVER_ATTEMPTS";
/// The webhook function's URL: token mode finds its repositories'
/// webhooks by it.
pub const WEBHOOK_URL_VAR: &str = "WEBHOOK_URL";

/// What the step is set to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeliverSettings {
    /// Redeliveries per event at most (0: off).
    pub max: u32,
    pub webhook_url: Option<String>,
}

impl RedeliverSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, SettingsError> {
        let max = env.number(ATTEMPTS_VAR, DEFAULT_MAX_REDELIVERIES)?;
        if max > 10 {
            return Err(SettingsError::Invalid {
                name: ATTEMPTS_VAR,
                reason: format!("{max} is over 10"),
            });
        }
        Ok(RedeliverSettings {
            max,
            webhook_url: env.get(WEBHOOK_URL_VAR).filter(|u| !u.trim().is_empty()),
        })
    }
}

/// The step's state across runs of one cold start.
pub struct Redeliverer {
    pub settings: RedeliverSettings,
    /// Why the step does nothing has been logged (once per cold start).
    told: AtomicBool,
}

impl Redeliverer {
    pub fn new(settings: RedeliverSettings) -> Self {
        Redeliverer {
            settings,
            told: AtomicBool::new(false),
        }
    }

    fn tell_once(&self, why: &str) {
        if !self.told.swap(true, Ordering::Relaxed) {
            tracing::info!(outcome = "redelivery off", reason = why, "reconcile");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedeliveryError {
    #[error("signing in to GitHub: {0}")]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("the redelivery claim: {0}")]
    Claim(#[from] RecordError),
}

/// What one run of the step did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The events (guids) asked for again.
    pub redelivered: Vec<String>,
    /// What failed, each in a line that holds no credential.
    pub failures: Vec<String>,
}

/// Lists the recent deliveries of the webhook(s) and asks GitHub to
/// redeliver the lost ones; `repositories` are those `gantry.yaml` names.
/// Nothing here fails the run: failures are logged and returned.
pub async fn redeliver_lost(
    redeliverer: &Redeliverer,
    reporter: &Reporter,
    holder: &Holder,
    repositories: &[String],
) -> Outcome {
    let mut outcome = Outcome::default();
    let max = redeliverer.settings.max;
    if max == 0 {
        redeliverer.tell_once("REDELIVER_ATTEMPTS is 0");
        return outcome;
    }
    let now_ms = gantry_core::events::now_ms();
    let since_ms = now_ms.saturating_sub(KEPT_MS);
    // App mode lists the App's own webhook, as the App (its JWT, made
    // with the key the installation tokens are made with).
    let listed = match reporter.credentials.app_jwt(now_ms / 1000).await {
        Err(e) => Err(e.into()),
        Ok(Some(jwt)) => list_app(jwt, reporter, since_ms).await,
        Ok(None) => {
            let Some(url) = redeliverer.settings.webhook_url.as_deref() else {
                redeliverer.tell_once(
                    "token mode needs WEBHOOK_URL (the webhook function's URL) to find the repositories' webhooks",
                );
                return outcome;
            };
            let mut repos: Vec<&str> = Vec::new();
            for r in repositories.iter().filter(|r| is_literal_repository(r)) {
                if !repos.iter().any(|k| k.eq_ignore_ascii_case(r)) {
                    repos.push(r);
                }
            }
            if repos.is_empty() {
                redeliverer.tell_once(
                    "token mode looks at the repositories gantry.yaml names outright, and it names none",
                );
                return outcome;
            }
            list_repositories(reporter, holder, url, &repos, since_ms, &mut outcome).await
        }
    };
    let (attempts, auth) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            fail(&mut outcome, None, &e);
            return outcome;
        }
    };
    for pick in to_redeliver(&attempts, now_ms, max) {
        // One GitHub call and the claim's two writes must fit in the time
        // left; what does not is the next run's.
        if !holder.deadline.covers(reporter.status_budget()) {
            break;
        }
        let Some(auth) = auth.token_for(&pick.hook) else {
            continue;
        };
        match redeliver_one(reporter, holder, &pick, auth).await {
            Ok(true) => {
                tracing::info!(
                    correlation_id = %pick.guid,
                    delivery_id = pick.delivery_id,
                    hook = %pick.hook,
                    event = pick.event.as_deref().unwrap_or(""),
                    action = pick.action.as_deref().unwrap_or(""),
                    status_code = pick.status_code.unwrap_or(0),
                    redeliveries = pick.redeliveries,
                    outcome = "redelivered",
                    "reconcile"
                );
                outcome.redelivered.push(pick.guid);
            }
            Ok(false) => {}
            Err(e) => fail(&mut outcome, Some(&pick.guid), &e),
        }
    }
    outcome
}

fn fail(outcome: &mut Outcome, guid: Option<&str>, e: &RedeliveryError) {
    tracing::warn!(
        correlation_id = guid.unwrap_or(""),
        error = %e,
        outcome = "redelivery failed",
        "reconcile"
    );
    outcome.failures.push(match guid {
        Some(g) => format!("{g}: {e}"),
        None => e.to_string(),
    });
}

/// The credential each hook is asked with.
enum Auth {
    /// The App's JWT, for [`Hook::App`].
    Jwt(gantry_aws::secrets::Secret),
    /// Token mode's token, for every repository's hook.
    Token(gantry_aws::secrets::Secret),
}

impl Auth {
    fn token_for(&self, hook: &Hook) -> Option<&gantry_aws::secrets::Secret> {
        match (self, hook) {
            (Auth::Jwt(jwt), Hook::App) => Some(jwt),
            (Auth::Token(token), Hook::Repository { .. }) => Some(token),
            _ => None,
        }
    }
}

type Listed = (Vec<(Hook, Delivery)>, Auth);

async fn list_app(
    jwt: gantry_aws::secrets::Secret,
    reporter: &Reporter,
    since_ms: u64,
) -> Result<Listed, RedeliveryError> {
    let deliveries = reporter
        .github
        .hook_deliveries(&Hook::App, &jwt, since_ms, MAX_PAGES)
        .await?;
    Ok((
        deliveries.into_iter().map(|d| (Hook::App, d)).collect(),
        Auth::Jwt(jwt),
    ))
}

/// Token mode: the deliveries of every webhook of `repos` (at least one)
/// that delivers to `webhook_url`. A repository whose
/// webhooks cannot be read is a failure of its own; the others are still
/// looked at.
async fn list_repositories(
    reporter: &Reporter,
    holder: &Holder,
    webhook_url: &str,
    repos: &[&str],
    since_ms: u64,
    outcome: &mut Outcome,
) -> Result<Listed, RedeliveryError> {
    let mut attempts = Vec::new();
    // Token mode's one token, whatever the repository.
    let token = reporter
        .credentials
        .required(
            None,
            repos.first().copied().unwrap_or_default(),
            Permissions::default(),
        )
        .await?;
    for &repo in repos {
        // Listing a hook's hooks and deliveries: a few GitHub calls.
        if !holder
            .deadline
            .covers(reporter.github.timeout().saturating_mul(2))
        {
            break;
        }
        let listed: Result<(), RedeliveryError> = async {
            let hooks = reporter.github.repository_hooks(repo, &token).await?;
            for hook in hooks
                .into_iter()
                .filter(|h| h.url.as_deref().is_some_and(|u| same_url(u, webhook_url)))
            {
                let hook = Hook::Repository {
                    repo: repo.to_owned(),
                    id: hook.id,
                };
                let deliveries = reporter
                    .github
                    .hook_deliveries(&hook, &token, since_ms, MAX_PAGES)
                    .await?;
                attempts.extend(deliveries.into_iter().map(|d| (hook.clone(), d)));
            }
            Ok(())
        }
        .await;
        if let Err(e) = listed {
            fail(outcome, None, &e);
        }
    }
    Ok((attempts, Auth::Token(token)))
}

/// `Ok(true)` when this run asked GitHub for the redelivery; `Ok(false)`
/// when another run has (or is about to).
async fn redeliver_one(
    reporter: &Reporter,
    holder: &Holder,
    pick: &gantry_core::github::deliveries::Redelivery<Hook>,
    auth: &gantry_aws::secrets::Secret,
) -> Result<bool, RedeliveryError> {
    let records = &reporter.records;
    let key = claim_key(&pick.guid, pick.redeliveries);
    let lease = match records.acquire_key(&key, holder).await? {
        Acquired::Won(lease) => lease,
        Acquired::Busy { .. } | Acquired::Done => return Ok(false),
    };
    match reporter
        .github
        .redeliver(&pick.hook, pick.delivery_id, auth)
        .await
    {
        Ok(()) => {
            records.complete(lease, holder).await?;
            Ok(true)
        }
        Err(e) => {
            // Given back, so the next run asks again.
            if let Err(released) = records.release(lease).await {
                tracing::warn!(error = %released, "a redelivery claim could not be given back");
            }
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<RedeliverSettings, SettingsError> {
        RedeliverSettings::from_env(&Env(|name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }))
    }

    #[test]
    fn three_redeliveries_by_default_zero_is_off_and_over_ten_is_named() {
        assert_eq!(
            settings(&[]).expect("valid"),
            RedeliverSettings {
                max: 3,
                webhook_url: None
            }
        );
        let set = settings(&[
            (ATTEMPTS_VAR, "0"),
            (WEBHOOK_URL_VAR, "https://abc.lambda-url.eu-west-1.on.aws/"),
        ])
        .expect("valid");
        assert_eq!(set.max, 0);
        assert_eq!(
            set.webhook_url.as_deref(),
            Some("https://abc.lambda-url.eu-west-1.on.aws/")
        );
        assert_eq!(
            settings(&[(WEBHOOK_URL_VAR, " ")])
                .expect("valid")
                .webhook_url,
            None
        );
        for bad in ["11", "-1", "three"] {
            let err = settings(&[(ATTEMPTS_VAR, bad)]).expect_err(bad);
            assert!(err.to_string().contains(ATTEMPTS_VAR), "{err}");
        }
    }
}
