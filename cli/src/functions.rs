//! The functions `gantry dev` drives from their rules' queues, as the
//! deployed rules invoke them: same handlers, same events.

use gantry_shared::settings::SettingsError;
use serde::de::DeserializeOwned;

use crate::stack::{self, names};
use crate::tap::Observed;

pub struct LocalFunctions {
    validate: gantry_validate_buildspec::Deps,
    inject: gantry_inject_secrets::Deps,
    start: gantry_start_build::Deps,
}

fn detail<T: DeserializeOwned>(observed: &Observed, function: &str) -> Result<T, String> {
    serde_json::from_value(observed.detail.clone())
        .map_err(|e| format!("  {function}: not a {} event: {e}", observed.detail_type))
}

impl LocalFunctions {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        github_api: &str,
        with_token: bool,
    ) -> Result<Self, SettingsError> {
        let validate = gantry_validate_buildspec::Settings {
            github_api_url: github_api.to_owned(),
            github_token_parameter: with_token.then(|| names::GITHUB_TOKEN_PARAMETER.to_owned()),
            artifact_bucket: names::BUCKET.to_owned(),
            event_bus: names::BUS.to_owned(),
        };
        // Pick up edits to the configuration quickly while developing.
        let inject = stack::inject_secrets_settings(&[("CONFIG_TTL_SECONDS", "5")])?;
        let start = stack::start_build_settings(&[])?;
        Ok(LocalFunctions {
            validate: validate.deps(sdk),
            inject: inject.deps(sdk),
            start: start.deps(sdk),
        })
    }

    /// Runs the function a rule targets with the event, and says what came
    /// of it; `None` when the rule targets no function (the event log).
    pub async fn dispatch(&self, observed: &Observed) -> Option<String> {
        let target = |name: &str| observed.targets.iter().any(|t| t == name);
        let line = if target("ValidateBuildspecFunction") {
            self.validate(observed).await
        } else if target("InjectSecretsFunction") {
            self.inject(observed).await
        } else if target("StartBuildFunction") {
            self.start(observed).await
        } else {
            return None;
        };
        Some(line.unwrap_or_else(|e| e))
    }

    async fn validate(&self, observed: &Observed) -> Result<String, String> {
        use gantry_validate_buildspec::Outcome;
        let event = detail(observed, "validate-buildspec")?;
        Ok(
            match gantry_validate_buildspec::handle(&self.validate, event).await {
                Ok(Outcome::Validated(e)) => {
                    format!("  validate-buildspec: valid, {}", e.buildspec.location)
                }
                Ok(Outcome::Rejected(e)) => {
                    format!("  validate-buildspec: rejected: {}", e.reason)
                }
                // Deployed, EventBridge would retry this invocation.
                Err(e) => format!("  validate-buildspec: failed (EventBridge would retry): {e}"),
            },
        )
    }

    async fn inject(&self, observed: &Observed) -> Result<String, String> {
        use gantry_inject_secrets::Outcome;
        let event = detail(observed, "inject-secrets")?;
        Ok(
            match gantry_inject_secrets::handle(&self.inject, event).await {
                Ok(Outcome::Resolved(e)) => {
                    let names: Vec<String> = e
                        .secrets
                        .iter()
                        .map(|s| format!("{}={}", s.variable, s.parameter))
                        .collect();
                    match &e.withheld {
                        Some(why) => format!("  inject-secrets: {why}"),
                        None if names.is_empty() => {
                            "  inject-secrets: resolved, no secrets needed".to_owned()
                        }
                        None => format!("  inject-secrets: resolved {}", names.join(" ")),
                    }
                }
                Ok(Outcome::Rejected(e)) => format!(
                    "  inject-secrets: rejected: {} (create them with: aws --endpoint-url $AWS_ENDPOINT_URL ssm put-parameter --type SecureString --name <name> --value <value>)",
                    e.reason
                ),
                Ok(Outcome::Held(e)) => format!("  inject-secrets: held: {}", e.message),
                Err(e) => format!("  inject-secrets: failed (EventBridge would retry): {e}"),
            },
        )
    }

    async fn start(&self, observed: &Observed) -> Result<String, String> {
        use gantry_start_build::Outcome;
        let event = detail(observed, "start-build")?;
        Ok(match gantry_start_build::handle(&self.start, event).await {
            Ok(Outcome::Started(e)) => format!(
                "  start-build: started {} (source version {}{})",
                e.build_id,
                e.source.commit_sha,
                if e.trusted { "" } else { ", untrusted" }
            ),
            Ok(Outcome::Superseded(e)) => format!(
                "  start-build: not started, superseded by {}",
                e.superseded_by.commit_sha
            ),
            Ok(Outcome::Rejected(e)) => format!("  start-build: rejected: {}", e.reason),
            Ok(Outcome::Duplicate { build_id }) => format!(
                "  start-build: already started{}",
                build_id.map(|id| format!(" as {id}")).unwrap_or_default()
            ),
            Err(e) => format!("  start-build: failed (EventBridge would retry): {e}"),
        })
    }
}
