//! The validate-buildspec Lambda, on `Build Requested`: the buildspec at
//! the exact commit, checked before any build machine starts.
//!
//! Valid: `Buildspec Validated` carries it (inline when small, else an S3
//! key) with its digest. Invalid or missing: `Build Rejected` with the
//! diagnostics, which becomes a failing commit status with line and column.
//! GitHub unreachable: the invocation fails and EventBridge retries.

pub mod handler;

use gantry_aws::bus::EventBus;
use gantry_aws::github::credentials::GitHubSettings;
use gantry_core::settings::Env;

pub use handler::{Deps, HandlerError, Outcome, TIMEOUT, handle, worst_case};

#[derive(Debug, Clone)]
pub struct Settings {
    /// GitHub's API, and the token or App the buildspecs are read with.
    pub github: GitHubSettings,
    pub artifact_bucket: String,
    pub event_bus: String,
}

pub use gantry_core::settings::SettingsError;

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        Ok(Settings {
            github: GitHubSettings::from_env(&env)?,
            artifact_bucket: env.required("ARTIFACT_BUCKET")?,
            event_bus: env.or("EVENT_BUS_NAME", "gantry"),
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        let s3 = aws_sdk_s3::Client::new(sdk);
        Deps {
            github: self.github.client(),
            credentials: self.github.credentials(&aws_sdk_ssm::Client::new(sdk)),
            records: gantry_aws::records::Records::new(s3.clone(), self.artifact_bucket.clone()),
            s3,
            bucket: self.artifact_bucket.clone(),
            bus: EventBus::new(
                aws_sdk_eventbridge::Client::new(sdk),
                self.event_bus.clone(),
            ),
        }
    }
}
