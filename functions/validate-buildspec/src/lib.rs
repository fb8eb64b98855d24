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

pub use handler::{Deps, HandlerError, Outcome, handle};

#[derive(Debug, Clone)]
pub struct Settings {
    pub github_api_url: String,
    pub github_token_parameter: Option<String>,
    pub artifact_bucket: String,
    pub event_bus: String,
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is required")]
pub struct SettingsError(&'static str);

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        Ok(Settings {
            github_api_url: get("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.into()),
            github_token_parameter: get("GITHUB_TOKEN_PARAMETER"),
            artifact_bucket: get("ARTIFACT_BUCKET").ok_or(SettingsError("ARTIFACT_BUCKET"))?,
            event_bus: get("EVENT_BUS_NAME").unwrap_or_else(|| "gantry".into()),
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
