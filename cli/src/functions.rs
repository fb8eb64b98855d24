//! The functions `gantry dev` drives from their rules' queues, as the
//! deployed rules invoke them: same handlers, same events.

use gantry_shared::events::BuildRequested;
use gantry_validate_buildspec::Outcome;

use crate::stack::names;
use crate::tap::Observed;

pub struct LocalFunctions {
    validate: gantry_validate_buildspec::Deps,
}

impl LocalFunctions {
    pub fn new(sdk: &aws_config::SdkConfig, github_api: &str, with_token: bool) -> Self {
        let settings = gantry_validate_buildspec::Settings {
            github_api_url: github_api.to_owned(),
            github_token_parameter: with_token.then(|| names::GITHUB_TOKEN_PARAMETER.to_owned()),
            artifact_bucket: names::BUCKET.to_owned(),
            event_bus: names::BUS.to_owned(),
        };
        LocalFunctions {
            validate: settings.deps(sdk),
        }
    }

    /// Runs the function a rule targets with the event, and says what came
    /// of it; `None` when the rule targets no function (the event log).
    pub async fn dispatch(&self, observed: &Observed) -> Option<String> {
        if observed
            .targets
            .iter()
            .any(|t| t == "ValidateBuildspecFunction")
        {
            let request: BuildRequested = match serde_json::from_value(observed.detail.clone()) {
                Ok(r) => r,
                Err(e) => {
                    return Some(format!(
                        "  validate-buildspec: not a Build Requested event: {e}"
                    ));
                }
            };
            let line = match gantry_validate_buildspec::handle(&self.validate, request).await {
                Ok(Outcome::Validated(e)) => {
                    format!("  validate-buildspec: valid, {}", e.buildspec.location)
                }
                Ok(Outcome::Rejected(e)) => format!("  validate-buildspec: rejected: {}", e.reason),
                // Deployed, EventBridge would retry this invocation.
                Err(e) => format!("  validate-buildspec: failed (EventBridge would retry): {e}"),
            };
            return Some(line);
        }
        None
    }
}
