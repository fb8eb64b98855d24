//! The build-events Lambda: every moment of a build, told to people.
//!
//! It consumes Gantry's own events (`Build Skipped`, `Build Rejected`,
//! `Build Held`, `Build Started`, `Build Superseded`) and CodeBuild's
//! `Build State Change` / `Build Phase Change` for Gantry's builds, and:
//! - posts the commit status on GitHub, once per (subject, state), never
//!   moving a finished status back to `pending`;
//! - tells the configured chats, per route and strategy; a chat that is
//!   down never holds the status back;
//! - completes the build record in S3 and the branch's SVG badge.
//!
//! It also reports CodePipeline executions that run Gantry's invoke action
//! (`aws.codepipeline` `Pipeline Execution State Change`) as a commit status
//! on their GitHub source commit; see [`pipeline`].

pub mod dead_letters;
pub mod handler;
pub mod pipeline;

use std::time::Duration;

use gantry_aws::chat::{Notifier, RetryPolicy};
use gantry_aws::config_source::ConfigSource;
use gantry_aws::github::contents::{self, DEFAULT_API_URL, GitHubClient};
use gantry_aws::records::Records;
use gantry_aws::secrets::SecretCache;
use gantry_core::settings::Env;

pub use gantry_core::settings::SettingsError;
pub use handler::{Deps, HandlerError, Report, TIMEOUT, handle_event, handle_event_until};

/// Per chat route at worst: 3 attempts of 10 s, waits of 1 s and 2 s (or a
/// `Retry-After` of at most 10 s), 50 s; a test checks that a status and a
/// route fit one invocation.
pub const CHAT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 3,
    base: Duration::from_secs(1),
    max_wait: Duration::from_secs(10),
};

#[derive(Debug, Clone)]
pub struct Settings {
    pub github_api_url: String,
    /// Each GitHub request's limit (`GITHUB_TIMEOUT_MS`, default 10 s).
    pub github_timeout: Duration,
    pub github_token_parameter: String,
    pub config_parameter: String,
    pub config_ttl: Duration,
    pub artifact_bucket: String,
}

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        Ok(Settings {
            github_api_url: env.or("GITHUB_API_URL", DEFAULT_API_URL),
            github_timeout: Duration::from_millis(env.number(
                contents::TIMEOUT_VAR,
                u64::try_from(contents::DEFAULT_TIMEOUT.as_millis()).unwrap_or(10_000),
            )?),
            github_token_parameter: env.required("GITHUB_TOKEN_PARAMETER")?,
            config_parameter: env.required("CONFIG_PARAMETER")?,
            config_ttl: Duration::from_secs(env.number("CONFIG_TTL_SECONDS", 60)?),
            artifact_bucket: env.required("ARTIFACT_BUCKET")?,
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        let ssm = aws_sdk_ssm::Client::new(sdk);
        Deps {
            github: GitHubClient::with_timeout(&self.github_api_url, self.github_timeout),
            token: SecretCache::new(
                ssm.clone(),
                vec![self.github_token_parameter.clone()],
                Duration::from_secs(300),
            ),
            config: ConfigSource::new(ssm.clone(), self.config_parameter.clone(), self.config_ttl),
            records: Records::new(aws_sdk_s3::Client::new(sdk), self.artifact_bucket.clone()),
            notifier: Notifier::with_policy(CHAT_RETRY),
            chat_urls: handler::ChatUrls::new(ssm),
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            codebuild: aws_sdk_codebuild::Client::new(sdk),
            aws_timeout: sdk
                .timeout_config()
                .and_then(|t| t.operation_timeout())
                .unwrap_or(gantry_aws::AwsTimeouts::LONG.operation),
        }
    }
}
