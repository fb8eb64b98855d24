//! The validate-buildspec Lambda, on `Build Requested`: the buildspec at
//! the exact commit, checked before any build machine starts.
//!
//! Valid: `Buildspec Validated` carries it (inline when small, else an S3
//! key) with its digest. Invalid or missing: `Build Rejected` with the
//! diagnostics, which becomes a failing commit status with line and column.
//! GitHub unreachable: the invocation fails and EventBridge retries.

pub mod handler;

use std::time::Duration;

use gantry_aws::bus::EventBus;
use gantry_aws::github::contents::{self, GitHubClient};
use gantry_aws::secrets::SecretCache;
use gantry_core::settings::Env;

pub use handler::{Deps, HandlerError, Outcome, TIMEOUT, handle, worst_case};

#[derive(Debug, Clone)]
pub struct Settings {
    pub github_api_url: String,
    /// Each GitHub request's limit (`GITHUB_TIMEOUT_MS`, default 10 s).
    pub github_timeout: Duration,
    pub github_token_parameter: Option<String>,
    pub artifact_bucket: String,
    pub event_bus: String,
}

pub use gantry_core::settings::SettingsError;

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        let (github_api_url, github_timeout) = contents::api_from_env(&env)?;
        Ok(Settings {
            github_api_url,
            github_timeout,
            github_token_parameter: env.get("GITHUB_TOKEN_PARAMETER"),
            artifact_bucket: env.required("ARTIFACT_BUCKET")?,
            event_bus: env.or("EVENT_BUS_NAME", "gantry"),
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        Deps {
            github: GitHubClient::with_timeout(&self.github_api_url, self.github_timeout),
            token: self.github_token_parameter.as_ref().map(|name| {
                SecretCache::new(
                    aws_sdk_ssm::Client::new(sdk),
                    vec![name.clone()],
                    Duration::from_secs(300),
                )
            }),
            s3: aws_sdk_s3::Client::new(sdk),
            records: gantry_aws::records::Records::new(
                aws_sdk_s3::Client::new(sdk),
                self.artifact_bucket.clone(),
            ),
            bucket: self.artifact_bucket.clone(),
            bus: EventBus::new(
                aws_sdk_eventbridge::Client::new(sdk),
                self.event_bus.clone(),
            ),
        }
    }
}
