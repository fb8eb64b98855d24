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
pub mod requests;

use gantry_aws::on_first_use::OnFirstUse;

pub use gantry_aws::report::Report;
pub use gantry_core::settings::SettingsError;
pub use handler::{Deps, HandlerError, TIMEOUT, handle_event, handle_event_until};

pub use gantry_aws::report::{CHAT_RETRY, ReporterSettings};

#[derive(Debug, Clone)]
pub struct Settings {
    pub reporter: ReporterSettings,
    /// The Gantry bus (`EVENT_BUS_NAME`), for re-runs from GitHub.
    pub event_bus: String,
}

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let event_bus = gantry_core::settings::Env(&var).or("EVENT_BUS_NAME", "gantry");
        Ok(Settings {
            reporter: ReporterSettings::from_env(var)?,
            event_bus,
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        Deps {
            reporter: self.reporter.reporter(sdk),
            // A pipeline's execution events and GitHub's re-run requests
            // are the rarer paths; a build's state change needs neither.
            codepipeline: OnFirstUse::new(sdk, aws_sdk_codepipeline::Client::new),
            bus: gantry_aws::bus::EventBus::new(
                OnFirstUse::new(sdk, aws_sdk_eventbridge::Client::new),
                self.event_bus.clone(),
            ),
        }
    }
}
