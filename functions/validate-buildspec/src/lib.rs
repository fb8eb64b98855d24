//! The validate-buildspec Lambda, on `Build Requested`: the buildspec at
//! the exact commit, checked before any build machine starts.
//!
//! Valid: `Buildspec Validated` carries it (inline when small, else an S3
//! key) with its digest. Invalid or missing: `Build Rejected` with the
//! diagnostics, which becomes a failing commit status with line and column.
//! GitHub unreachable: the invocation fails and EventBridge retries.

pub mod handler;

use std::time::Duration;

use gantry_shared::aws::bus::EventBus;
use gantry_shared::aws::secrets::SecretCache;
use gantry_shared::github::contents::{DEFAULT_API_URL, GitHubClient};
use gantry_shared::settings::Env;

pub use handler::{Deps, HandlerError, Outcome, handle};

#[derive(Debug, Clone)]
pub struct Settings {
    pub github_api_url: String,
    pub github_token_parameter: Option<String>,
    pub artifact_bucket: String,
    pub event_bus: String,
}

pub use gantry_shared::settings::SettingsError;

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        Ok(Settings {
            github_api_url: env.or("GITHUB_API_URL", DEFAULT_API_URL),
            github_token_parameter: env.get("GITHUB_TOKEN_PARAMETER"),
            artifact_bucket: env.required("ARTIFACT_BUCKET")?,
            event_bus: env.or("EVENT_BUS_NAME", "gantry"),
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        Deps {
            github: GitHubClient::new(&self.github_api_url),
            token: self.github_token_parameter.as_ref().map(|name| {
                SecretCache::new(
                    aws_sdk_ssm::Client::new(sdk),
                    vec![name.clone()],
                    Duration::from_secs(300),
                )
            }),
            s3: aws_sdk_s3::Client::new(sdk),
            bucket: self.artifact_bucket.clone(),
            bus: EventBus::new(
                aws_sdk_eventbridge::Client::new(sdk),
                self.event_bus.clone(),
            ),
        }
    }
}
