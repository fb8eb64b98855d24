//! The functions `gantry dev` drives from their rules' queues, as the
//! deployed rules invoke them: same handlers, same events.

use gantry_core::settings::SettingsError;
use serde::de::DeserializeOwned;

use gantry_aws::github::credentials;

use crate::builds::LocalBuilds;
use crate::stack::{self, names};
use crate::tap::Observed;

pub struct LocalFunctions {
    validate: gantry_validate_buildspec::Deps,
    inject: gantry_inject_secrets::Deps,
    start: gantry_start_build::Deps,
    events: gantry_build_events::Deps,
    schedule: gantry_schedule::Deps,
    codebuild: aws_sdk_codebuild::Client,
    /// The ids of builds started and not yet seen to end, when moto's
    /// CodeBuild ends them (no local builds).
    running: tokio::sync::Mutex<Vec<String>>,
    /// Runs the builds here, in CodeBuild's place.
    builds: Option<LocalBuilds>,
}

/// Where the local functions reach GitHub.
pub struct GitHubUrls<'a> {
    /// Buildspecs are read here.
    pub contents_api: &'a str,
    /// A token is stored for validate-buildspec to read with.
    pub with_token: bool,
    /// Commit statuses are posted here.
    pub statuses_api: &'a str,
    /// App mode: the App's id, its key stored at
    /// [`names::GITHUB_APP_KEY_PARAMETER`].
    pub app: Option<gantry_aws::github::credentials::AppSettings>,
    /// The build page's address: statuses, check runs and chat link each
    /// build to its page there (its key at [`names::PAGE_KEY_PARAMETER`]).
    pub page_url: Option<&'a str>,
}

fn detail<T: DeserializeOwned>(observed: &Observed, function: &str) -> Result<T, String> {
    serde_json::from_value(observed.detail.clone())
        .map_err(|e| format!("  {function}: not a {} event: {e}", observed.detail_type))
}

impl LocalFunctions {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        github: &GitHubUrls<'_>,
    ) -> Result<Self, SettingsError> {
        let validate = gantry_validate_buildspec::Settings {
            github: gantry_aws::github::credentials::GitHubSettings {
                api_url: github.contents_api.to_owned(),
                timeout: gantry_aws::github::contents::DEFAULT_TIMEOUT,
                token_parameter: github
                    .with_token
                    .then(|| names::GITHUB_TOKEN_PARAMETER.to_owned()),
                app: github.app.clone(),
            },
            artifact_bucket: names::BUCKET.to_owned(),
            event_bus: names::BUS.to_owned(),
        };
        // Pick up edits to the configuration quickly while developing.
        let inject = stack::inject_secrets_settings(&[("CONFIG_TTL_SECONDS", "5")])?;
        let start = stack::start_build_settings(&[])?;
        let app_id = github.app.as_ref().map(|a| a.app_id.to_string());
        let mut overrides = vec![
            ("GITHUB_API_URL", github.statuses_api),
            ("CONFIG_TTL_SECONDS", "5"),
        ];
        if let Some(id) = &app_id {
            overrides.push((credentials::APP_ID_VAR, id));
            overrides.push((
                credentials::APP_KEY_PARAMETER_VAR,
                names::GITHUB_APP_KEY_PARAMETER,
            ));
        }
        if let Some(url) = github.page_url {
            overrides.push((gantry_aws::pages::PAGE_URL_VAR, url));
        }
        let events = stack::build_events_settings(&overrides)?;
        let schedule = stack::schedule_settings(&overrides)?;
        Ok(LocalFunctions {
            schedule: schedule.deps(sdk),
            validate: validate.deps(sdk),
            inject: inject.deps(sdk),
            start: start.deps(sdk),
            events: events.deps(sdk),
            codebuild: aws_sdk_codebuild::Client::new(sdk),
            running: tokio::sync::Mutex::default(),
            builds: None,
        })
    }

    /// Runs each build start-build starts on this machine (see
    /// [`crate::builds`]) instead of letting moto's CodeBuild declare it
    /// succeeded.
    pub fn with_local_builds(mut self, builds: LocalBuilds) -> Self {
        self.builds = Some(builds);
        self
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
        } else if target("BuildEventsFunction") {
            self.build_events(observed).await
        } else {
            return None;
        };
        Some(line.unwrap_or_else(|e| e))
    }

    /// One run of the schedule function, as its rule runs it every minute:
    /// for the minute `at` falls in (default: now). A line per schedule
    /// that fired.
    pub async fn tick(&self, at: Option<chrono::DateTime<chrono::Utc>>) -> Vec<String> {
        use gantry_schedule::Fired;
        let tick = gantry_schedule::Tick {
            time: at.map(|t| t.to_rfc3339()),
        };
        match gantry_schedule::tick(&self.schedule, &tick).await {
            Ok(summary) if summary.fired.is_empty() => Vec::new(),
            Ok(summary) => summary
                .fired
                .iter()
                .map(|(id, fired)| match fired {
                    Fired::Requested(ids) => {
                        format!("  schedule: {id} fired: requested {}", ids.join(", "))
                    }
                    Fired::Duplicate => format!("  schedule: {id}: fired already this minute"),
                    Fired::Pending(ids) => format!(
                        "  schedule: {id}: not fired, its previous builds have not finished ({})",
                        ids.join(", ")
                    ),
                })
                .collect(),
            Err(e) => vec![format!("  schedule: failed (Lambda would retry): {e}")],
        }
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
                Ok(Outcome::ApprovalIgnored(e)) => {
                    format!(
                        "  validate-buildspec: approval by @{} ignored: {}",
                        e.by, e.reason
                    )
                }
                Ok(Outcome::Skipped(e)) => {
                    format!("  validate-buildspec: skipped: {}", e.reason.message)
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

    async fn build_events(&self, observed: &Observed) -> Result<String, String> {
        use gantry_core::events::{BuildStarted, BuildSuperseded, Detail};
        let mut stopped = None;
        match &self.builds {
            None if observed.detail_type == BuildStarted::DETAIL_TYPE => {
                if let Some(id) = observed.detail["build_id"].as_str() {
                    self.running.lock().await.push(id.to_owned());
                }
            }
            // start-build's StopBuild reached moto; the build stops here.
            Some(builds) if observed.detail_type == BuildSuperseded::DETAIL_TYPE => {
                if let Ok(e) = serde_json::from_value::<BuildSuperseded>(observed.detail.clone())
                    && let Some(id) = &e.build_id
                    && builds.stop(id)
                {
                    stopped = Some(format!("  local build: {id} stopped"));
                }
            }
            _ => {}
        }
        let event = serde_json::json!({
            "source": observed.source,
            "detail-type": observed.detail_type,
            "detail": observed.detail,
        });
        let result = gantry_build_events::handle_event(&self.events, &event).await;
        // A Cancel from GitHub: build-events' StopBuild reached moto; the
        // build stops here.
        if let (Some(builds), Ok(r)) = (&self.builds, &result)
            && let Some(id) = &r.stopped
            && builds.stop(id)
        {
            stopped = Some(format!("  local build: {id} stopped"));
        }
        let reported = report(result);
        // Said with the rest of what the event came to, not printed aside.
        Ok(match stopped {
            Some(line) => format!("{line}\n{reported}"),
            None => reported,
        })
    }

    /// What CodeBuild would tell EventBridge: each build seen to end in the
    /// emulator becomes a `CodeBuild Build State Change`, printed, then
    /// handed to build-events. One line per event and one per outcome.
    pub async fn progress(&self) -> Vec<String> {
        let ids: Vec<String> = self.running.lock().await.clone();
        if ids.is_empty() {
            return Vec::new();
        }
        let builds = match self
            .codebuild
            .batch_get_builds()
            .set_ids(Some(ids))
            .send()
            .await
        {
            Ok(out) => out.builds().to_vec(),
            Err(e) => {
                return vec![format!(
                    "  codebuild: BatchGetBuilds failed: {}",
                    gantry_aws::describe_sdk_error(&e)
                )];
            }
        };
        let mut lines = Vec::new();
        for build in &builds {
            let Some(status) = build
                .build_status()
                .map(|s| gantry_core::codebuild_events::BuildStatus::parse(s.as_str()))
                .filter(|s| s.is_final())
            else {
                continue;
            };
            let status = status.as_str();
            let id = build.id().unwrap_or_default().to_owned();
            self.running.lock().await.retain(|r| *r != id);
            let event = gantry_aws::codebuild::state_change_event(build);
            lines.push(format!(
                "[aws.codebuild] CodeBuild Build State Change {id} {status}"
            ));
            lines.push(report(
                gantry_build_events::handle_event(&self.events, &event).await,
            ));
        }
        lines
    }

    async fn start(&self, observed: &Observed) -> Result<String, String> {
        use gantry_start_build::Outcome;
        let event: gantry_core::events::SecretsResolved = detail(observed, "start-build")?;
        Ok(
            match gantry_start_build::handle(&self.start, event.clone()).await {
                Ok(Outcome::Started(e)) => {
                    let mut line = format!(
                        "  start-build: started {} (source version {}{})",
                        e.build_id,
                        e.source.commit_sha,
                        if e.trusted { "" } else { ", untrusted" }
                    );
                    if let Some(builds) = &self.builds {
                        line.push('\n');
                        line.push_str(&builds.start(&event, &e));
                    }
                    line
                }
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
            },
        )
    }
}

fn report(
    result: Result<gantry_build_events::Report, gantry_build_events::HandlerError>,
) -> String {
    match result {
        Ok(r) => {
            use gantry_aws::check_runs::Outcome;
            let status = match (r.posted, r.check_run, r.unchanged) {
                (Some(state), _, _) => format!("status {}", state.as_str()),
                (None, Some(Outcome::Created(id)), _) => format!("check run #{id} created"),
                (None, Some(Outcome::Updated(id)), _) => format!("check run #{id} updated"),
                (None, Some(Outcome::Kept(why)), _) => format!("check run kept ({why})"),
                (None, None, Some(why)) => format!("no status ({why})"),
                (None, None, None) => "no status".to_owned(),
            };
            format!("  build-events: {status}, {} message(s)", r.notified)
        }
        Err(e) => format!("  build-events: failed (EventBridge would retry): {e}"),
    }
}
