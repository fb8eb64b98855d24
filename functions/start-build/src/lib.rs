//! The start-build Lambda, on `Secrets Resolved`: one CodeBuild build for
//! the commit, started once, with secrets by reference.
//!
//! - The source is the commit itself (`sourceVersion` = the SHA), the
//!   buildspec the one validated, the secrets `PARAMETER_STORE` variables
//!   (names only) and Gantry's metadata plain variables, never spliced into
//!   commands.
//! - Once: a start record in S3 (`starts/<token>.json`, created with
//!   `If-None-Match: *`) and CodeBuild's `idempotencyToken`, both derived
//!   from the delivery id. A replayed event starts nothing.
//! - Superseded builds: each build of a branch or pull request registers
//!   under `groups/`; the older in-progress ones are stopped and reported as
//!   superseded, not failed.
//! - CodeBuild at its concurrency or account limit: `Build Held` (queued),
//!   retries with backoff, then `Build Rejected` with the reason.

pub mod codebuild;
pub mod handler;
pub mod store;

use std::time::Duration;

use gantry_aws::bus::EventBus;
use gantry_core::settings::Env;

pub use handler::{Deps, HandlerError, Outcome, TIMEOUT, handle, handle_until};

#[derive(Debug, Clone)]
pub struct Settings {
    pub artifact_bucket: String,
    pub event_bus: String,
    /// The role a fork's pull request builds under: no SSM, no registry.
    pub untrusted_role_arn: Option<String>,
    /// A CodeConnections connection for private repositories.
    pub github_connection_arn: Option<String>,
    pub retry: Retry,
    /// What gantry.yaml may ask builds to run on.
    pub limits: codebuild::ComputeLimits,
}

/// How long to keep asking a CodeBuild that is at its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
}

impl Retry {
    /// The longest the capacity retries can take: every wait, and every
    /// attempt taking `call`.
    pub fn worst_case(&self, call: Duration) -> Duration {
        (1..self.attempts).map(|n| self.delay(n)).sum::<Duration>()
            + call.saturating_mul(self.attempts)
    }

    /// The wait before attempt `n` (1-based, after a refusal): base, 2×base,
    /// 4×base, …, at most 2 minutes.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.base
            .saturating_mul(factor)
            .min(Duration::from_secs(120))
    }
}

pub use gantry_core::settings::SettingsError;

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        Ok(Settings {
            artifact_bucket: env.required("ARTIFACT_BUCKET")?,
            event_bus: env.or("EVENT_BUS_NAME", "gantry"),
            untrusted_role_arn: env.get("UNTRUSTED_SERVICE_ROLE_ARN"),
            github_connection_arn: env.get("GITHUB_CONNECTION_ARN"),
            retry: Retry {
                attempts: env.number("START_RETRY_ATTEMPTS", 6u32)?.clamp(1, 20),
                base: Duration::from_millis(env.number("START_RETRY_BASE_MS", 5000)?),
            },
            limits: {
                let defaults = codebuild::ComputeLimits::default();
                // Set but empty is a list of none: the operator allows no
                // override of that kind (unset: the template's defaults).
                codebuild::ComputeLimits {
                    compute_types: env
                        .list("ALLOWED_COMPUTE_TYPES")
                        .unwrap_or(defaults.compute_types),
                    images: env.list("ALLOWED_IMAGES").unwrap_or(defaults.images),
                    max_timeout_minutes: env
                        .number("MAX_BUILD_TIMEOUT_MINUTES", defaults.max_timeout_minutes)?,
                }
            },
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        let s3 = aws_sdk_s3::Client::new(sdk);
        Deps {
            codebuild: aws_sdk_codebuild::Client::new(sdk),
            store: store::Store::new(s3.clone(), self.artifact_bucket.clone()),
            records: gantry_aws::records::Records::new(s3, self.artifact_bucket.clone()),
            bus: EventBus::new(
                aws_sdk_eventbridge::Client::new(sdk),
                self.event_bus.clone(),
            ),
            untrusted_role_arn: self.untrusted_role_arn.clone(),
            github_connection_arn: self.github_connection_arn.clone(),
            region: sdk
                .region()
                .map(ToString::to_string)
                .unwrap_or_else(|| "us-east-1".into()),
            retry: self.retry,
            limits: self.limits.clone(),
            aws_timeout: sdk
                .timeout_config()
                .and_then(|t| t.operation_timeout())
                .unwrap_or(gantry_aws::AwsTimeouts::LONG.operation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let r = Retry {
            attempts: 6,
            base: Duration::from_secs(5),
        };
        let waits: Vec<u64> = (1..=7).map(|n| r.delay(n).as_secs()).collect();
        assert_eq!(waits, vec![5, 10, 20, 40, 80, 120, 120]);
    }
}
