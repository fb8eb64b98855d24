//! Carrying out what a verdict comes to (`gantry_core::report`): the
//! commit status, claimed once per (subject, state) and never replacing a
//! build's status with a skip's; the chat messages, each claimed; the
//! build record, the branch's last result and badge. Used by build-events
//! and by reconcile, which finishes builds whose final event never came.

use crate::on_first_use::OnFirstUse;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::chat::{Notifier, RetryPolicy};
use crate::check_runs;
use crate::config_source::{ConfigError, ConfigSource};
use crate::first_read::FirstRead;
use crate::github::app::Permissions;
use crate::github::contents::{GitHubClient, GitHubError};
use crate::github::credentials::{Credentials, CredentialsError, GitHubSettings};
use crate::records::{Acquired, RecordError, Records};
use crate::secrets::SecretCache;
use gantry_core::badge::{self, BadgeState};
use gantry_core::codebuild_events::{BuildStatus, CodeBuildDetail};
use gantry_core::config::{Route, StatusSettings};
use gantry_core::deadline::{Deadline, OutOfTime};
use gantry_core::events::{BuildSource, now_ms};
use gantry_core::exported::Exported;
use gantry_core::github::checks::{self, Annotation};
use gantry_core::github::statuses::{CommitStatus, StatusState};
use gantry_core::notify::{BuildResult, Message};
use gantry_core::records::ArtifactsPlace;
use gantry_core::records::{BuildRecord, Effect, Finished, Holder, PhaseTiming};
use gantry_core::report::{BadgeUpdate, badge as report_badge, needs_history, plan};
use gantry_core::settings::{Env, SettingsError};
use gantry_core::status::{self, Verdict};
use gantry_core::test_reports::TestResults;

pub struct Reporter {
    pub github: GitHubClient,
    /// The token that posts statuses, or the App's installation tokens.
    pub credentials: Credentials,
    pub config: ConfigSource,
    pub records: Records,
    pub notifier: Notifier,
    pub chat_urls: ChatUrls,
    /// Reads what CodeBuild's events leave out (the exported variables).
    /// Made at init where every usual invocation reports a finished build
    /// ([`ReporterSettings::reporter`]); on first use where none does
    /// ([`ReporterSettings::reporter_codebuild_on_first_use`]).
    pub codebuild: OnFirstUse<aws_sdk_codebuild::Client>,
    /// The builds' logs, for a failed build's check run.
    pub logs: crate::build_logs::BuildLogs,
    /// The longest an AWS call may take (the SDK's operation timeout).
    pub aws_timeout: Duration,
    /// The build page's links, when a page is deployed.
    pub pages: Option<crate::pages::PageLinks>,
}

impl Reporter {
    /// The longest posting one commit status can take, the claim's
    /// completion included: claimed only with this much time left.
    pub fn status_budget(&self) -> Duration {
        self.github.timeout() + self.aws_timeout.saturating_mul(2)
    }

    /// The same for one chat route's message.
    pub fn notify_budget(&self) -> Duration {
        self.notifier.retry_policy().worst_case() + self.aws_timeout.saturating_mul(2)
    }
}

/// Per chat route at worst: 3 attempts of 10 s, waits of 1 s and 2 s (or a
/// `Retry-After` of at most 10 s), 50 s; a test checks that a status and a
/// route fit one invocation.
pub const CHAT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 3,
    base: Duration::from_secs(1),
    max_wait: Duration::from_secs(10),
};

#[derive(Debug, Clone)]
/// The environment a reporting function reads (template.yaml sets it).
pub struct ReporterSettings {
    /// GitHub's API, and the token or App that reports.
    pub github: GitHubSettings,
    pub config_parameter: String,
    pub config_ttl: Duration,
    pub artifact_bucket: String,
    pub pages: Option<crate::pages::PageSettings>,
}

impl ReporterSettings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        let github = GitHubSettings::from_env(&env)?;
        if github.app.is_none() && github.token_parameter.is_none() {
            // Reporting writes: token mode needs its token.
            return Err(SettingsError::Missing(
                crate::github::credentials::TOKEN_PARAMETER_VAR,
            ));
        }
        Ok(ReporterSettings {
            github,
            config_parameter: env.required("CONFIG_PARAMETER")?,
            config_ttl: Duration::from_secs(env.number("CONFIG_TTL_SECONDS", 60)?),
            artifact_bucket: env.required("ARTIFACT_BUCKET")?,
            pages: crate::pages::PageSettings::from_env(&env)?,
        })
    }

    /// The reporter of build-events and reconcile, which report finished
    /// builds (a BatchGetBuilds each): its CodeBuild client is made now.
    pub fn reporter(&self, sdk: &aws_config::SdkConfig) -> Reporter {
        self.reporter_with(sdk, aws_sdk_codebuild::Client::new(sdk).into())
    }

    /// The reporter of a function that reports no finished CodeBuild build
    /// itself (schedule: its statuses and records are for the builds it
    /// requests): the CodeBuild client, half a million instructions of
    /// init, is made only if a report ever needs it.
    pub fn reporter_codebuild_on_first_use(&self, sdk: &aws_config::SdkConfig) -> Reporter {
        self.reporter_with(sdk, OnFirstUse::new(sdk, aws_sdk_codebuild::Client::new))
    }

    fn reporter_with(
        &self,
        sdk: &aws_config::SdkConfig,
        codebuild: OnFirstUse<aws_sdk_codebuild::Client>,
    ) -> Reporter {
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let mut credentials = self.github.credentials(&ssm);
        let mut config =
            ConfigSource::new(ssm.clone(), self.config_parameter.clone(), self.config_ttl);
        let mut pages = self
            .pages
            .clone()
            .map(|p| crate::pages::PageLinks::new(p, ssm.clone()));
        // A report reads the configuration, GitHub's token or key and the
        // page key: the first, in one request.
        let first: Vec<String> = std::iter::once(&self.config_parameter)
            .chain(credentials.parameters())
            .chain(self.pages.as_ref().map(|p| &p.key_parameter))
            .cloned()
            .collect();
        if let Some(first) = FirstRead::new(ssm.clone(), &first) {
            credentials = credentials.with_first_read(&first);
            config = config.with_first_read(&first);
            pages = pages.map(|p| p.with_first_read(&first));
        }
        Reporter {
            github: self.github.client(),
            credentials,
            config,
            records: Records::new(aws_sdk_s3::Client::new(sdk), self.artifact_bucket.clone()),
            notifier: Notifier::with_policy(CHAT_RETRY),
            pages,
            chat_urls: ChatUrls::new(ssm),
            codebuild,
            // Read for a failed build only.
            logs: crate::build_logs::BuildLogs::new(OnFirstUse::new(
                sdk,
                aws_sdk_cloudwatchlogs::Client::new,
            )),
            aws_timeout: sdk
                .timeout_config()
                .and_then(|t| t.operation_timeout())
                .unwrap_or(crate::AwsTimeouts::LONG.operation),
        }
    }
}

/// Chat webhook URLs (SSM SecureStrings), read once per TTL each.
pub struct ChatUrls {
    ssm: aws_sdk_ssm::Client,
    caches: tokio::sync::Mutex<HashMap<String, Arc<SecretCache>>>,
}

impl ChatUrls {
    pub fn new(ssm: aws_sdk_ssm::Client) -> Self {
        ChatUrls {
            ssm,
            caches: tokio::sync::Mutex::default(),
        }
    }

    async fn cache(&self, parameter: &str) -> Arc<SecretCache> {
        let mut caches = self.caches.lock().await;
        caches
            .entry(parameter.to_owned())
            .or_insert_with(|| {
                Arc::new(SecretCache::new(
                    self.ssm.clone(),
                    vec![parameter.to_owned()],
                    Duration::from_secs(300),
                ))
            })
            .clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unreadable event: {0}")]
    Event(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Token(#[from] CredentialsError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{what}: {reason}")]
    Pipeline { what: String, reason: String },
    #[error("CodeBuild: {what}: {reason}")]
    CodeBuild { what: String, reason: String },
    #[error(transparent)]
    Publish(#[from] crate::bus::PublishError),
    #[error("no build record for {build_id} yet; it is written before the build is announced")]
    NoRecord { build_id: String },
    #[error(transparent)]
    OutOfTime(#[from] OutOfTime),
    #[error(
        "{effect} is being carried out by {holder}; retrying once its claim is done or expired"
    )]
    Busy {
        effect: &'static str,
        holder: String,
    },
    #[error("{failed} of {routes} chat notifications failed: {reasons}")]
    Notify {
        failed: usize,
        routes: usize,
        reasons: String,
    },
}

impl gantry_core::failure::ErrorKind for ReportError {
    fn kind(&self) -> &'static str {
        match self {
            ReportError::Event(_) => "report.UnreadableEvent",
            ReportError::Config(_) => "report.ConfigUnavailable",
            ReportError::Token(_) => "report.GitHubTokenUnavailable",
            ReportError::GitHub(e) if e.is_transient() => "report.GitHubUnavailable",
            ReportError::GitHub(_) => "report.GitHubRefused",
            ReportError::Record(_) => "report.S3Unavailable",
            ReportError::Pipeline { .. } => "report.CodePipelineUnavailable",
            ReportError::CodeBuild { .. } => "report.CodeBuildUnavailable",
            ReportError::Publish(_) => "report.EventBridgeUnavailable",
            ReportError::NoRecord { .. } => "report.BuildRecordNotYetWritten",
            ReportError::OutOfTime(_) => "report.OutOfTime",
            ReportError::Busy { .. } => "report.EffectBusy",
            ReportError::Notify { .. } => "report.ChatUnavailable",
        }
    }
}

/// What one event came to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The status posted, if one was.
    pub posted: Option<StatusState>,
    /// Why nothing was posted.
    pub unchanged: Option<&'static str>,
    /// What became of the check run (App mode).
    pub check_run: Option<check_runs::Outcome>,
    /// The build stopped (Cancel from GitHub).
    pub stopped: Option<gantry_core::ids::BuildId>,
    /// Messages sent.
    pub notified: usize,
}

/// Reports a finished build: the record, the status, the chats, the badge.
/// Also what `reconcile` calls for a build whose final event never came.
pub async fn finish(
    reporter: &Reporter,
    holder: &Holder,
    record: &mut BuildRecord,
    detail: &CodeBuildDetail,
) -> Result<Report, ReportError> {
    let superseded = || Report {
        unchanged: Some("stopped as superseded; reported as such"),
        ..Report::default()
    };
    if status::finished(record, detail).is_none() {
        return Ok(superseded());
    }
    if record.finished.is_none() {
        // The link at the start may have been CodeBuild's placeholder; the
        // end's names the log.
        if let Some(link) = detail.logs_link() {
            record.logs_url = Some(link.to_owned());
        }
        let BuildFacts {
            exported,
            tests,
            artifacts,
        } = build_facts(reporter, detail, &record.build_id).await;
        record.finished = Some(Finished {
            status: detail
                .build_status
                .clone()
                .unwrap_or(BuildStatus::Other(String::new())),
            finished_at_ms: now_ms(),
            duration_seconds: detail.duration_seconds(),
            failed_phase: detail.failed_phase().map(str::to_owned),
            phases: detail
                .additional_information
                .phases
                .iter()
                .map(|p| PhaseTiming {
                    phase: p.phase_type.clone(),
                    status: p.phase_status.clone(),
                    duration_seconds: p.duration_in_seconds.map(|d| d.max(0.0).round() as u64),
                })
                .collect(),
            image_uri: exported.image_uri,
            layer_cache: exported.layer_cache,
            tests,
            artifacts,
            log: detail.log_place(),
        });
        reporter.records.put_build(record).await?;
    }
    // Again, now that the record has the test counts the verdict names.
    let Some(verdict) = status::finished(record, detail) else {
        return Ok(superseded());
    };
    let record = &*record;
    deliver_with(
        reporter,
        holder,
        Ids {
            correlation_id: &record.correlation_id,
            project: &record.project,
            build_id: Some(&record.build_id),
            buildspec_digest: record.buildspec_digest.as_deref(),
        },
        &record.source,
        verdict,
        Some(record),
        Some(detail),
    )
    .await
}

/// The failed phase's last lines and the log's annotations. Best effort:
/// a log that cannot be read leaves the run without them, not unreported.
async fn log_tail(reporter: &Reporter, detail: &CodeBuildDetail) -> LogTail {
    let Some(place) = detail.log_place() else {
        return LogTail::default();
    };
    let lines = match reporter.logs.tail(&place).await {
        Ok(lines) => lines,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the build's log for its check run");
            return LogTail::default();
        }
    };
    if lines.is_empty() {
        return LogTail::default();
    }
    let phase = detail.failed_phase().unwrap_or("the build");
    let shown = match detail.failed_phase() {
        Some(phase) => checks::phase_lines(&lines, phase),
        None => &lines[..],
    };
    LogTail {
        text: Some(checks::log_excerpt(phase, shown, checks::MAX_OUTPUT_CHARS)),
        annotations: checks::log_annotations(lines.iter().map(String::as_str), None),
    }
}

/// What CodeBuild keeps of a finished build beyond its final event: the
/// exported values (the pushed image, the layer cache's share), which the
/// state-change events leave out, and the test reports' counts. One
/// BatchGetBuilds, then the reports. Best effort: the record is written
/// without them if CodeBuild cannot be asked.
async fn build_facts(reporter: &Reporter, detail: &CodeBuildDetail, build_id: &str) -> BuildFacts {
    let in_event = Exported::from_vars(
        detail
            .additional_information
            .exported_environment_variables
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str())),
    );
    let build = match reporter
        .codebuild
        .batch_get_builds()
        .ids(build_id)
        .send()
        .await
    {
        Ok(out) => out.builds.unwrap_or_default().into_iter().next(),
        Err(e) => {
            tracing::warn!(
                build_id = %build_id,
                reason = %crate::describe_sdk_error(&e),
                "could not read the build's exported variables and reports"
            );
            None
        }
    };
    let Some(build) = build else {
        return BuildFacts {
            exported: in_event,
            ..BuildFacts::default()
        };
    };
    let exported = if in_event.is_empty() {
        Exported::from_vars(
            build
                .exported_environment_variables()
                .iter()
                .map(|v| (v.name().unwrap_or_default(), v.value().unwrap_or_default())),
        )
    } else {
        in_event
    };
    let tests = crate::test_reports::results(&reporter.codebuild, build.report_arns()).await;
    let artifacts = build
        .artifacts()
        .and_then(|a| a.location())
        .and_then(ArtifactsPlace::from_location);
    BuildFacts {
        exported,
        tests,
        artifacts,
    }
}

/// What [`build_facts`] found.
#[derive(Debug, Default)]
struct BuildFacts {
    exported: Exported,
    tests: Option<TestResults>,
    artifacts: Option<ArtifactsPlace>,
}

pub async fn status_settings(
    reporter: &Reporter,
    source: &BuildSource,
) -> Result<StatusSettings, ReportError> {
    let config = reporter.config.get().await?;
    Ok(config
        .repository(&source.repository.full_name)
        .map(|r| r.status.clone())
        .unwrap_or_default())
}

/// Reports `verdict`: plans it (`gantry_core::report::plan`), then posts
/// the status once, tells the chats, and updates the branch's last result
/// and badge for a finished build.
#[allow(clippy::too_many_arguments)]
pub async fn deliver(
    reporter: &Reporter,
    holder: &Holder,
    correlation_id: &str,
    project: &str,
    source: &BuildSource,
    verdict: Verdict,
    record: Option<&BuildRecord>,
) -> Result<Report, ReportError> {
    deliver_with(
        reporter,
        holder,
        Ids {
            correlation_id,
            project,
            build_id: record.map(|r| &r.build_id),
            buildspec_digest: record.and_then(|r| r.buildspec_digest.as_deref()),
        },
        source,
        verdict,
        record,
        None,
    )
    .await
}

/// Which delivery's build of which project a moment is of.
#[derive(Debug, Clone, Copy)]
pub struct Ids<'a> {
    pub correlation_id: &'a str,
    pub project: &'a str,
    /// The build, once one started (its check run's Cancel stops it).
    pub build_id: Option<&'a gantry_core::ids::BuildId>,
    /// The buildspec it runs, once validated.
    pub buildspec_digest: Option<&'a str>,
}

/// What a failed build's log adds to its check run.
#[derive(Debug, Clone, Default)]
struct LogTail {
    /// The failed phase's last lines, Markdown.
    pub text: Option<String>,
    pub annotations: Vec<Annotation>,
}

/// [`deliver`] with the build's ids and, for its end, CodeBuild's final
/// state (a failed build's check run shows its log).
pub async fn deliver_with(
    reporter: &Reporter,
    holder: &Holder,
    ids: Ids<'_>,
    source: &BuildSource,
    verdict: Verdict,
    record: Option<&BuildRecord>,
    finished: Option<&CodeBuildDetail>,
) -> Result<Report, ReportError> {
    let Ids {
        correlation_id,
        project,
        ..
    } = ids;
    let config = reporter.config.get().await?;
    let rules = config.repository(&source.repository.full_name);
    let group = source.group();
    let mut verdict = verdict;
    let page = page_link(reporter, ids, source, &verdict, record).await;
    if let Some(page) = &page {
        verdict.target_url = Some(page.clone());
    }
    let previous = if needs_history(&verdict) {
        reporter.records.last_result(project, &group).await?
    } else {
        None
    };
    let mut plan = plan(
        rules,
        project,
        correlation_id,
        source,
        verdict,
        record,
        previous.as_ref(),
    );
    if let Some(page) = page {
        // Chat's two links: the page, and its log.
        let (at, _) = page.split_once('#').unwrap_or((&page, ""));
        plan.message.logs_url = Some(format!("{at}#log"));
        plan.message.build_url = Some(page);
    }
    let verdict = &plan.verdict;

    // The status: once per (subject, state); a final one once per subject.
    let subject = verdict.subject.as_str();
    let final_status = Effect::Status {
        subject,
        state: None,
    };
    let this_status = Effect::Status {
        subject,
        state: (!verdict.is_final).then_some(verdict.state),
    };
    let mut report = Report::default();
    let blocked_by_final = !verdict.is_final && reporter.records.claimed(&final_status).await?;
    if blocked_by_final {
        report.unchanged = Some("already finished; never back to pending");
    } else {
        holder
            .deadline
            .require(reporter.status_budget(), "post a commit status")?;
        match reporter.records.acquire(&this_status, holder).await? {
            Acquired::Done => report.unchanged = Some("already posted"),
            Acquired::Busy { holder: other, .. } => {
                return Err(ReportError::Busy {
                    effect: "the commit status",
                    holder: other,
                });
            }
            Acquired::Won(lease) => {
                let moment = this_status.key();
                match post_moment(
                    reporter, holder, ids, source, &plan, record, finished, moment,
                )
                .await
                {
                    Ok(done) => {
                        reporter.records.complete(lease, holder).await?;
                        report.posted = done.status.then_some(verdict.state);
                        report.check_run = done.check_run;
                        if let Some(why) = done.unchanged {
                            report.unchanged = Some(why);
                        }
                    }
                    Err(e) => {
                        reporter.records.release(lease).await?;
                        return Err(e);
                    }
                }
            }
        }
    }

    // A named build's moment moves its commit's aggregate, and a scheduled
    // build's end frees its schedule; both again on a retry, which finds
    // the status done but perhaps not these.
    if !blocked_by_final {
        if let Some(rules) = rules {
            crate::aggregate::member_moment(
                reporter,
                rules,
                source,
                correlation_id,
                verdict.state,
                verdict.is_final,
            )
            .await?;
        }
        if verdict.is_final
            && let Some(run) = &source.run
            && run.schedule.is_some()
        {
            reporter
                .records
                .put_json(
                    &gantry_core::schedule::done_key(correlation_id),
                    &serde_json::json!({ "state": verdict.state.as_str() }),
                )
                .await?;
        }
    }

    // The chats the plan chose, each claimed once.
    if let Some(rules) = rules {
        let mut failures = Vec::new();
        for &i in &plan.routes {
            let Some(route) = rules.notifications.get(i) else {
                continue;
            };
            let effect = Effect::Notify {
                subject,
                route: i,
                provider: route.provider,
                url_parameter: &route.url_parameter,
            };
            holder
                .deadline
                .require(reporter.notify_budget(), "send a chat message")?;
            let lease = match reporter.records.acquire(&effect, holder).await? {
                Acquired::Won(lease) => lease,
                Acquired::Done => continue,
                Acquired::Busy { holder: other, .. } => {
                    failures.push(format!("{}: being sent by {other}", route.provider));
                    continue;
                }
            };
            match notify(reporter, route, &plan.message, holder.deadline).await {
                Ok(()) => {
                    reporter.records.complete(lease, holder).await?;
                    report.notified += 1;
                }
                Err(reason) => {
                    reporter.records.release(lease).await?;
                    tracing::warn!(correlation_id, provider = %route.provider, reason = %reason, "chat notification failed");
                    failures.push(format!("{}: {reason}", route.provider));
                }
            }
        }
        if !failures.is_empty() {
            return Err(ReportError::Notify {
                failed: failures.len(),
                routes: plan.routes.len(),
                reasons: failures.join("; "),
            });
        }
    }

    // The branch's memory and badge, after a build's end.
    if let Some(last) = &plan.last_result {
        reporter
            .records
            .put_last_result(project, &group, last)
            .await?;
    }
    if let Some(b) = &plan.badge {
        reporter
            .records
            .put_badge(&b.key, badge::svg(&b.branch, b.state))
            .await?;
    }
    Ok(report)
}

/// The link to a build's page, for a moment of a started build, when a
/// page is deployed (and the repository's builds have one). A key that
/// cannot be read or made leaves the moment with its own link (the
/// console's): the status matters more than where it points.
async fn page_link(
    reporter: &Reporter,
    ids: Ids<'_>,
    source: &BuildSource,
    verdict: &Verdict,
    record: Option<&BuildRecord>,
) -> Option<String> {
    let (Some(pages), Some(build_id)) = (&reporter.pages, ids.build_id) else {
        return None;
    };
    let failed =
        verdict.is_final && matches!(verdict.state, StatusState::Failure | StatusState::Error);
    let trusted = record.is_none_or(|r| r.trusted);
    match pages
        .build_link(build_id, source, trusted, failed, now_ms() / 1000)
        .await
    {
        Ok(link) => link,
        Err(e) => {
            tracing::warn!(
                correlation_id = %ids.correlation_id,
                build_id = %build_id,
                error = %e,
                "no build page link; the moment keeps its own link"
            );
            None
        }
    }
}

/// The badge a branch build of `source` updates, saying `state` (see
/// `gantry_core::report::badge`).
pub async fn badge_of(
    reporter: &Reporter,
    source: &BuildSource,
    state: BadgeState,
) -> Result<Option<BadgeUpdate>, ReportError> {
    let config = reporter.config.get().await?;
    Ok(report_badge(
        config.repository(&source.repository.full_name),
        source,
        state,
    ))
}

/// What carrying one moment out came to.
struct Posted {
    status: bool,
    check_run: Option<check_runs::Outcome>,
    unchanged: Option<&'static str>,
}

/// Carries out one claimed moment: as a check run in App mode, as a
/// commit status in token mode (and in App mode too when configured).
#[allow(clippy::too_many_arguments)]
async fn post_moment(
    reporter: &Reporter,
    holder: &Holder,
    ids: Ids<'_>,
    source: &BuildSource,
    plan: &gantry_core::report::Plan,
    record: Option<&BuildRecord>,
    finished: Option<&CodeBuildDetail>,
    moment: String,
) -> Result<Posted, ReportError> {
    let verdict = &plan.verdict;
    let status = &plan.status;
    let app = reporter.credentials.app_settings();
    let mut posted = Posted {
        status: false,
        check_run: None,
        unchanged: None,
    };
    if app.is_some() {
        // Read only now, for the one invocation that sets the moment.
        let log = match finished {
            Some(detail) if verdict.state != StatusState::Success => {
                log_tail(reporter, detail).await
            }
            _ => LogTail::default(),
        };
        let outcome = check_runs::report(
            reporter,
            holder,
            &check_runs::Moment {
                correlation_id: ids.correlation_id,
                project: ids.project,
                build_id: ids.build_id,
                buildspec_digest: ids.buildspec_digest,
                source,
                name: &status.context,
                moment,
                verdict,
                record,
                text: log.text.as_deref(),
                log_annotations: &log.annotations,
                only_create: false,
            },
        )
        .await?;
        tracing::info!(
            correlation_id = %ids.correlation_id,
            repo = %source.repository.full_name,
            commit = %source.commit_sha,
            name = %status.context,
            outcome = ?outcome,
            "check run"
        );
        posted.check_run = Some(outcome);
    }
    if app.is_none_or(|a| a.statuses_too) {
        let commit = Effect::BuildOnCommit {
            repo: &source.repository.full_name,
            sha: &source.commit_sha,
            context: &status.context,
        };
        let subject = verdict.subject.as_str();
        if post_unless_built(reporter, &commit, subject, verdict, source, status).await? {
            posted.status = true;
            tracing::info!(
                correlation_id = %ids.correlation_id,
                repo = %source.repository.full_name,
                commit = %source.commit_sha,
                context = %status.context,
                state = verdict.state.as_str(),
                description = %verdict.description,
                outcome = "status",
                "status posted"
            );
        } else {
            posted.unchanged = Some(SKIP_KEPT_OUT);
            tracing::info!(
                correlation_id = %ids.correlation_id,
                repo = %source.repository.full_name,
                commit = %source.commit_sha,
                context = %status.context,
                outcome = "skip_not_posted",
                "a build's status is on this commit; the skip does not replace it"
            );
        }
    }
    Ok(posted)
}

/// A delivery accepted (`Build Requested`): in App mode its check run,
/// created `queued`; token mode posts nothing for it. No chat hears of it.
pub async fn queued(
    reporter: &Reporter,
    holder: &Holder,
    request: &gantry_core::events::BuildRequested,
) -> Result<Report, ReportError> {
    if !reporter.credentials.is_app() {
        return Ok(Report {
            unchanged: Some("token mode: a commit status starts with the build"),
            ..Report::default()
        });
    }
    let source = &request.source;
    let config = reporter.config.get().await?;
    let rules = config.repository(&source.repository.full_name);
    let verdict = gantry_core::status::requested(request);
    let plan = plan(
        rules,
        &request.project,
        request.correlation_id.as_str(),
        source,
        verdict,
        None,
        None,
    );
    // Its own moment: the hold's status shares the (subject, pending)
    // claim, and must not pass for a retry of this one.
    let moment = format!("accepted/{}", request.correlation_id);
    holder
        .deadline
        .require(reporter.status_budget(), "create a check run")?;
    let outcome = check_runs::report(
        reporter,
        holder,
        &check_runs::Moment {
            correlation_id: request.correlation_id.as_str(),
            project: &request.project,
            build_id: None,
            buildspec_digest: None,
            source,
            name: &plan.status.context,
            moment,
            verdict: &plan.verdict,
            record: None,
            text: None,
            log_annotations: &[],
            only_create: true,
        },
    )
    .await?;
    tracing::info!(
        correlation_id = %request.correlation_id,
        repo = %source.repository.full_name,
        commit = %source.commit_sha,
        name = %plan.status.context,
        outcome = ?outcome,
        "check run queued"
    );
    Ok(Report {
        check_run: Some(outcome),
        ..Report::default()
    })
}

/// Why a skip's `success` was not posted.
pub const SKIP_KEPT_OUT: &str =
    "a build's status is on this commit and context; a skip never replaces it";

/// Posts `status`, unless it is a skip's and something else (a build, a
/// rejection, a hold) already has a status on the same commit and context:
/// a skip never turns a commit green over a build's result. `Ok(false)`
/// when the skip was kept out.
async fn post_unless_built(
    reporter: &Reporter,
    commit: &Effect<'_>,
    subject: &str,
    verdict: &Verdict,
    source: &BuildSource,
    status: &CommitStatus,
) -> Result<bool, ReportError> {
    if verdict.result == BuildResult::Skipped {
        if !reporter.records.skip_may_post(commit, subject).await? {
            return Ok(false);
        }
    } else {
        reporter
            .records
            .mark_build_on_commit(commit, subject)
            .await?;
    }
    post_status(
        reporter,
        source.installation_id,
        &source.repository.full_name,
        &source.commit_sha,
        status,
    )
    .await?;
    Ok(true)
}

/// Posts one commit status with the GitHub token, or as the App on
/// `installation` (looked up when `None`).
pub async fn post_status(
    reporter: &Reporter,
    installation: Option<u64>,
    repo: &str,
    sha: &str,
    status: &CommitStatus,
) -> Result<(), ReportError> {
    let token = reporter
        .credentials
        .required(installation, repo, Permissions::WRITE_STATUSES)
        .await?;
    reporter
        .github
        .create_status(repo, sha, status, &token)
        .await?;
    Ok(())
}

async fn notify(
    reporter: &Reporter,
    route: &Route,
    message: &Message,
    deadline: Deadline,
) -> Result<(), String> {
    let provider = route.provider;
    let urls = reporter
        .chat_urls
        .cache(&route.url_parameter)
        .await
        .get()
        .await
        .map_err(|e| e.to_string())?;
    let url = urls
        .first()
        .ok_or_else(|| format!("{} is empty", route.url_parameter))?;
    reporter
        .notifier
        .send_before(provider, url, message, Some(deadline))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
