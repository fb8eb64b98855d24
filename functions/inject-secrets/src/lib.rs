//! The inject-secrets Lambda, on `Buildspec Validated`: which SSM
//! parameters the build needs, and do they exist.
//!
//! The names come from the repository's `secrets` mapping in gantry.yaml
//! and the buildspec's own `env.parameter-store`. They are checked with
//! `GetParameters` without decryption; no value is ever read. All there:
//! `Secrets Resolved` with the names only. Any missing, forbidden or outside
//! the allowed prefix: `Build Rejected` naming each one and the variable
//! that wanted it. A fork's pull request gets no references at all, or
//! waits for approval, per the repository's fork policy.

pub mod handler;

use std::time::Duration;

use gantry_aws::bus::EventBus;
use gantry_aws::config_source::ConfigSource;
use gantry_aws::on_first_use::OnFirstUse;
use gantry_core::settings::Env;

pub use gantry_core::config::{DEFAULT_PROJECT_PREFIX, TrustDomains};
pub use handler::{Deps, HandlerError, Outcome, handle};

#[derive(Debug, Clone)]
pub struct Settings {
    pub config_parameter: String,
    pub config_ttl: Duration,
    /// Build secrets must live under this SSM path (`/gantry/`), in the
    /// trust domain's own folder: the build's role may read nothing else.
    pub secrets_prefix: String,
    /// Projects are named `<project_prefix><domain>` (`gantry-build`).
    pub project_prefix: String,
    pub artifact_bucket: String,
    pub event_bus: String,
}

pub use gantry_core::settings::SettingsError;

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        let secrets_prefix = env.or("SECRETS_PATH_PREFIX", "/gantry/");
        if !secrets_prefix.starts_with('/') || !secrets_prefix.ends_with('/') {
            return Err(SettingsError::Invalid {
                name: "SECRETS_PATH_PREFIX",
                reason: format!("`{secrets_prefix}` must start and end with `/`"),
            });
        }
        Ok(Settings {
            config_parameter: env.required("CONFIG_PARAMETER")?,
            config_ttl: Duration::from_secs(env.number("CONFIG_TTL_SECONDS", 60)?),
            secrets_prefix,
            project_prefix: env.or("PROJECT_PREFIX", DEFAULT_PROJECT_PREFIX),
            artifact_bucket: env.required("ARTIFACT_BUCKET")?,
            event_bus: env.or("EVENT_BUS_NAME", "gantry"),
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let s3 = aws_sdk_s3::Client::new(sdk);
        Deps {
            config: ConfigSource::new(ssm.clone(), self.config_parameter.clone(), self.config_ttl),
            ssm,
            // Only a buildspec's `env.secrets-manager` needs it.
            secrets_manager: OnFirstUse::new(sdk, aws_sdk_secretsmanager::Client::new),
            domains: TrustDomains {
                secrets_prefix: self.secrets_prefix.clone(),
                project_prefix: self.project_prefix.clone(),
            },
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
