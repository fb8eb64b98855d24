//! The builds `gantry dev` runs itself. start-build starts a build as it
//! does when deployed (moto's CodeBuild keeps the record of it); then, in
//! CodeBuild's place, the local executor runs it on this machine: the
//! exact buildspec start-build passed, at the exact commit, checked out
//! from the local repository, with the variables start-build passed and the
//! secrets resolved from the local SSM. What CodeBuild would send to
//! EventBridge it sends too, onto the default bus: `Build State Change`
//! (`IN_PROGRESS`, then the end) and a `Build Phase Change` per phase, with
//! real timings, the real result, the failed phase and its reason, and a
//! link to the log. The template's `CodeBuildEventsRule` then takes the end
//! to build-events, as deployed.
//!
//! A build a newer commit supersedes is stopped: start-build's StopBuild
//! reaches moto, its `Build Superseded` reaches [`LocalBuilds::stop`], and
//! the executor kills what runs; the build ends `STOPPED`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use gantry_aws::describe_sdk_error;
use gantry_core::buildspec::runnable::runnable;
use gantry_core::codebuild_events::{
    self, AdditionalInformation, BuildStatus, CodeBuildDetail, EnvVar, Environment, Logs, Phase,
    phase_type, variable_type,
};
use gantry_core::events::{BuildStarted, BuildspecBody, SecretStore, SecretsResolved};
use gantry_core::ids::BuildId;
use tokio::sync::watch;

use crate::executor::source::{self, Identity};
use crate::executor::{self, Build, PhaseResult, PhaseStatus, Place, Step};
use crate::stack::names;

/// The image named in `CODEBUILD_BUILD_IMAGE` and the events when builds
/// run on the machine itself.
const LOCAL_IMAGE: &str = "local (gantry dev, shell executor)";

fn image(place: &Place) -> &str {
    match place {
        Place::Host => LOCAL_IMAGE,
        Place::Docker { image } => image,
    }
}
/// `CODEBUILD_INITIATOR` of a build start-build started.
const INITIATOR: &str = "gantry-dev/start-build";

/// Runs the builds start-build starts, in CodeBuild's place.
#[derive(Clone)]
pub struct LocalBuilds {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where each build's commit is checked out from.
    repo: PathBuf,
    s3: aws_sdk_s3::Client,
    ssm: aws_sdk_ssm::Client,
    secrets_manager: aws_sdk_secretsmanager::Client,
    events: aws_sdk_eventbridge::Client,
    /// Where CodeBuild keeps build logs: each build's, as it writes it.
    cloudwatch: aws_sdk_cloudwatchlogs::Client,
    /// A build's log is served at `<logs_url>/<log name>.log`.
    logs_url: String,
    timeout: Duration,
    /// Where the builds run.
    place: Place,
    /// The builds running, and how to stop each.
    running: Mutex<HashMap<BuildId, watch::Sender<bool>>>,
    /// Signs each build's page link, printed as it starts.
    pages: Option<gantry_aws::pages::PageLinks>,
    /// The variables the CodeBuild project would set (IMAGE_REPO, …).
    project_env: Vec<(String, String)>,
}

/// Why a build ended before its buildspec ran, in CodeBuild's words.
struct Early {
    status: BuildStatus,
    phase: &'static str,
    context: String,
}

impl LocalBuilds {
    /// `repo`: the git repository builds check their commit out of;
    /// `logs_url`: where [`crate::executor::source::log_dir`]'s files are
    /// served; `timeout`: the project's build timeout.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        repo: PathBuf,
        logs_url: String,
        timeout: Duration,
        place: Place,
    ) -> LocalBuilds {
        LocalBuilds {
            inner: Arc::new(Inner {
                repo,
                s3: aws_sdk_s3::Client::new(sdk),
                ssm: aws_sdk_ssm::Client::new(sdk),
                secrets_manager: aws_sdk_secretsmanager::Client::new(sdk),
                events: aws_sdk_eventbridge::Client::new(sdk),
                cloudwatch: aws_sdk_cloudwatchlogs::Client::new(sdk),
                logs_url,
                timeout,
                place,
                running: Mutex::default(),
                pages: None,
                project_env: Vec::new(),
            }),
        }
    }

    /// Prints each build's page link as it starts (the page `gantry dev`
    /// serves). Before any build starts.
    pub fn with_pages(mut self, pages: gantry_aws::pages::PageLinks) -> LocalBuilds {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.pages = Some(pages);
        }
        self
    }

    /// Sets the variables the CodeBuild project would (IMAGE_REPO,
    /// CACHE_REPO, …) on every build. Before any build starts.
    pub fn with_project_env(mut self, env: Vec<(String, String)>) -> LocalBuilds {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.project_env = env;
        }
        self
    }

    /// Runs the build start-build started for `event`, in the background;
    /// its log lines are printed as they come. Says where its log is.
    pub fn start(&self, event: &SecretsResolved, started: &BuildStarted) -> String {
        let (stop, stopped) = watch::channel(false);
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert(started.build_id.clone(), stop);
        }
        let url = log_url(&self.inner.logs_url, &started.build_id);
        let line = format!(
            "  local build: {} runs here, from {} at {}; log {url}",
            started.build_id,
            self.inner.repo.display(),
            started.source.commit_sha.short(),
        );
        let inner = self.inner.clone();
        let event = event.clone();
        let started = started.clone();
        tokio::spawn(async move {
            if let Some(pages) = &inner.pages {
                let now_s = gantry_core::events::now_ms() / 1000;
                match pages
                    .build_link(
                        &started.build_id,
                        &started.source,
                        started.trusted,
                        false,
                        now_s,
                    )
                    .await
                {
                    Ok(Some(url)) => println!("  build page: {url}"),
                    Ok(None) => {}
                    Err(e) => println!("  build page: no link: {e}"),
                }
            }
            run(&inner, &event, &started, stopped).await;
            if let Ok(mut running) = inner.running.lock() {
                running.remove(&started.build_id);
            }
        });
        line
    }

    /// Stops every build running here and waits (up to `wait`) for them to
    /// end: what they started is killed, not left behind when `gantry dev`
    /// exits. How many were running.
    pub async fn stop_all(&self, wait: Duration) -> usize {
        let count = match self.inner.running.lock() {
            Ok(running) => {
                for stop in running.values() {
                    let _ = stop.send(true);
                }
                running.len()
            }
            Err(_) => 0,
        };
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline
            && self
                .inner
                .running
                .lock()
                .map(|r| !r.is_empty())
                .unwrap_or(false)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        count
    }

    /// Stops the build if it runs here (what StopBuild does); whether it did.
    pub fn stop(&self, build_id: &BuildId) -> bool {
        let Ok(running) = self.inner.running.lock() else {
            return false;
        };
        running
            .get(build_id)
            .is_some_and(|stop| stop.send(true).is_ok())
    }
}

/// A line CodeBuild's agent writes itself: `[Container] <time> <text>`.
fn container_line(text: &str) -> String {
    format!(
        "[Container] {} {text}",
        gantry_core::time::codebuild_log_time(gantry_core::events::now_ms())
    )
}

/// The most events one PutLogEvents takes (its other bound, 1 MB, is far
/// off at this many lines of a build log; longer lines go in more calls).
const LOG_EVENTS_PER_CALL: usize = 1_000;
/// How long a line waits before it is written: a page following the build
/// sees it within about this.
const LOG_FLUSH: Duration = Duration::from_millis(300);

/// Writes the build's log where `logs` names it while the build runs, as
/// CodeBuild does, so that what reads logs (the build page following it, a
/// failed build's check run) reads it here too. Lines come through the
/// channel; it ends when the channel closes, with every line written.
async fn write_log(
    inner: &Inner,
    logs: &Logs,
    mut lines: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<(), String> {
    let (Some(group), Some(stream)) = (&logs.group_name, &logs.stream_name) else {
        while lines.recv().await.is_some() {}
        return Ok(());
    };
    let cw = &inner.cloudwatch;
    if let Err(e) = cw.create_log_group().log_group_name(group).send().await
        && !e
            .as_service_error()
            .is_some_and(|s| s.is_resource_already_exists_exception())
    {
        return Err(describe_sdk_error(&e));
    }
    cw.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .map_err(|e| describe_sdk_error(&e))?;
    let mut batch = Vec::new();
    let mut bytes = 0;
    let mut open = true;
    while open {
        // The first line of a batch waits for more, up to LOG_FLUSH.
        match lines.recv().await {
            Some(line) => {
                bytes += line.len() + 26;
                batch.push(line);
            }
            None => open = false,
        }
        let until = tokio::time::Instant::now() + LOG_FLUSH;
        while open && batch.len() < LOG_EVENTS_PER_CALL && bytes < 512 * 1024 {
            match tokio::time::timeout_at(until, lines.recv()).await {
                Ok(Some(line)) => {
                    bytes += line.len() + 26;
                    batch.push(line);
                }
                Ok(None) => open = false,
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let now = i64::try_from(gantry_core::events::now_ms()).unwrap_or(0);
        let events = std::mem::take(&mut batch)
            .into_iter()
            .map(|line| {
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now)
                    .message(format!("{line}\n"))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        bytes = 0;
        cw.put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
            .map_err(|e| describe_sdk_error(&e))?;
    }
    Ok(())
}

fn log_url(base: &str, id: &BuildId) -> String {
    format!("{base}/{}.log", source::log_name(id.as_str()))
}

/// What CodeBuild reports of one build, as it goes.
struct Reporter<'a> {
    inner: &'a Inner,
    started: &'a BuildStarted,
    environment: Environment,
    logs: Logs,
    phases: Vec<Phase>,
    began: Instant,
}

impl Reporter<'_> {
    fn detail(&self, status: Option<BuildStatus>, current: &str) -> CodeBuildDetail {
        CodeBuildDetail {
            build_status: status,
            project_name: self.started.project.clone(),
            build_arn: self.started.build_arn.clone(),
            current_phase: Some(current.to_owned()),
            completed_phase: None,
            completed_phase_status: None,
            completed_phase_duration_seconds: None,
            additional_information: AdditionalInformation {
                build_complete: false,
                initiator: Some(INITIATOR.to_owned()),
                source_version: Some(self.started.source.commit_sha.to_string()),
                environment: self.environment.clone(),
                phases: self.phases.clone(),
                logs: Some(self.logs.clone()),
                exported_environment_variables: Vec::new(),
            },
        }
    }

    /// Puts the event on the default bus, where CodeBuild sends its own.
    async fn send(&self, detail_type: &str, detail: &CodeBuildDetail) {
        let Ok(json) = serde_json::to_string(detail) else {
            return;
        };
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(crate::template::RuleBus::Default.name())
            .source(codebuild_events::SOURCE)
            .detail_type(detail_type)
            .detail(json)
            .resources(self.started.build_arn.as_str())
            .build();
        // As CodeBuild does, the event is sent again until it is taken: a
        // lost final event would leave the commit pending.
        for attempt in 0..5u32 {
            match self
                .inner
                .events
                .put_events()
                .entries(entry.clone())
                .send()
                .await
            {
                Ok(out) if out.failed_entry_count() == 0 => return,
                Ok(_) => println!("  codebuild: {detail_type} not taken by the bus; again"),
                Err(e) => println!(
                    "  codebuild: PutEvents failed: {}; again",
                    describe_sdk_error(&e)
                ),
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        println!(
            "  codebuild: {detail_type} of {} lost",
            self.started.build_id
        );
    }

    fn push(&mut self, phase: &str, status: &str, seconds: f64, context: Option<String>) {
        self.phases.push(Phase {
            phase_type: phase.to_owned(),
            phase_status: Some(status.to_owned()),
            duration_in_seconds: Some(seconds.round()),
            start_time: None,
            end_time: None,
            phase_context: context.into_iter().collect(),
        });
    }

    /// A phase ended: it joins the list and a phase change is sent.
    async fn phase(&mut self, phase: &str, status: &str, seconds: f64, context: Option<String>) {
        self.push(phase, status, seconds, context.clone());
        let mut detail = self.detail(None, phase);
        detail.completed_phase = Some(phase.to_owned());
        detail.completed_phase_status = Some(status.to_owned());
        detail.completed_phase_duration_seconds = Some(seconds.round());
        self.send(codebuild_events::PHASE_CHANGE, &detail).await;
    }

    async fn executed(&mut self, result: &PhaseResult) {
        self.phase(
            result.name.codebuild_name(),
            result.status.as_str(),
            result.duration.as_secs_f64(),
            result.message.clone(),
        )
        .await;
    }

    /// The build ended: CodeBuild's closing phases and the final state.
    async fn finish(&mut self, status: BuildStatus, exported: Vec<(String, String)>) {
        if status != BuildStatus::Fault {
            self.push(
                phase_type::UPLOAD_ARTIFACTS,
                PhaseStatus::Succeeded.as_str(),
                0.0,
                None,
            );
        }
        self.push(
            phase_type::FINALIZING,
            PhaseStatus::Succeeded.as_str(),
            0.0,
            None,
        );
        self.phases.push(Phase {
            phase_type: phase_type::COMPLETED.to_owned(),
            ..Phase::default()
        });
        let mut detail = self.detail(Some(status.clone()), phase_type::COMPLETED);
        detail.additional_information.build_complete = true;
        detail.additional_information.exported_environment_variables = exported
            .into_iter()
            .map(|(name, value)| EnvVar {
                name,
                value,
                kind: String::new(),
            })
            .collect();
        println!(
            "  codebuild: {} {} after {:.1} s{}",
            self.started.build_id,
            status.as_str(),
            self.began.elapsed().as_secs_f64(),
            detail
                .failed_phase()
                .map(|p| format!(" (in {p})"))
                .unwrap_or_default()
        );
        self.send(codebuild_events::STATE_CHANGE, &detail).await;
    }
}

async fn run(
    inner: &Inner,
    event: &SecretsResolved,
    started: &BuildStarted,
    stop: watch::Receiver<bool>,
) {
    // The variables start-build passed: its metadata as they are, the
    // secrets by parameter name (the events never carry a value).
    let metadata = gantry_start_build::codebuild::metadata(event);
    let mut variables: Vec<EnvVar> = metadata
        .iter()
        .map(|(name, value)| EnvVar {
            name: (*name).to_owned(),
            value: value.clone(),
            kind: variable_type::PLAINTEXT.to_owned(),
        })
        .collect();
    variables.extend(
        gantry_start_build::codebuild::plain_variables(event)
            .into_iter()
            .map(|(name, value)| EnvVar {
                name,
                value,
                kind: variable_type::PLAINTEXT.to_owned(),
            }),
    );
    variables.extend(event.secrets.iter().map(|s| {
        EnvVar {
            name: s.variable.clone(),
            value: s.parameter.clone(),
            kind: match s.store {
                SecretStore::ParameterStore => variable_type::PARAMETER_STORE,
                SecretStore::SecretsManager => variable_type::SECRETS_MANAGER,
            }
            .to_owned(),
        }
    }));
    let mut reporter = Reporter {
        inner,
        started,
        environment: Environment {
            image: Some(image(&inner.place).to_owned()),
            compute_type: event.source.compute.compute_type.clone(),
            environment_variables: variables,
        },
        // As CodeBuild names them: the project's group, the build's uuid
        // (under `untrusted/` for a fork's build).
        logs: {
            let place = gantry_core::page::log::LogPlace::conventional(
                &started.project,
                started.build_id.parts().1,
                started.trusted,
            );
            Logs {
                deep_link: Some(log_url(&inner.logs_url, &started.build_id)),
                group_name: Some(place.group),
                stream_name: Some(place.stream),
            }
        },
        phases: Vec::new(),
        began: Instant::now(),
    };
    reporter.push(
        phase_type::SUBMITTED,
        PhaseStatus::Succeeded.as_str(),
        0.0,
        None,
    );
    reporter.push(
        phase_type::QUEUED,
        PhaseStatus::Succeeded.as_str(),
        0.0,
        None,
    );
    reporter
        .send(
            codebuild_events::STATE_CHANGE,
            &reporter.detail(Some(BuildStatus::InProgress), phase_type::PROVISIONING),
        )
        .await;

    let dir = std::env::temp_dir().join(format!(
        "gantry-dev-build-{}",
        source::log_name(started.build_id.as_str())
    ));
    let prepared = prepare(inner, event, started, &dir, stop, &metadata, &mut reporter).await;
    let build = match prepared {
        Ok(build) => build,
        Err(early) => {
            reporter
                .phase(early.phase, early.status.as_str(), 0.0, Some(early.context))
                .await;
            reporter.finish(early.status, Vec::new()).await;
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    };

    let (_, uuid) = started.build_id.parts();
    let short = uuid.get(..8).unwrap_or(uuid).to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PhaseResult>();
    // The log as CodeBuild writes it to CloudWatch Logs: its own markers
    // around each phase's (masked) lines.
    let (log_tx, log_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let logs = reporter.logs.clone();
    // The sender goes with the build's observer: the writer ends once the
    // build ended and it wrote every line.
    let keep = move |line: String| {
        let _ = log_tx.send(line);
    };
    let execute = async {
        let mut observe = move |step: Step<'_>| match step {
            Step::PhaseStarted(phase) => keep(container_line(&format!(
                "Entering phase {}",
                phase.codebuild_name()
            ))),
            Step::Line(phase, text) => {
                println!("  [{short} {}] {text}", phase.codebuild_name());
                keep(text.to_owned());
            }
            Step::PhaseEnded(result) => {
                if let Some(message) = &result.message {
                    keep(container_line(message));
                }
                keep(container_line(&format!(
                    "Phase complete: {} State: {}",
                    result.name.codebuild_name(),
                    result.status.as_str()
                )));
                let _ = tx.send(result.clone());
            }
        };
        executor::run(&build, &mut observe).await
    };
    let forward = async {
        while let Some(result) = rx.recv().await {
            reporter.executed(&result).await;
        }
    };
    let writer = async {
        if let Err(reason) = write_log(inner, &logs, log_rx).await {
            println!(
                "  codebuild: the log of {} not kept in CloudWatch Logs: {reason}",
                started.build_id
            );
        }
    };
    let ((outcome, ()), ()) = tokio::join!(async { tokio::join!(execute, forward) }, writer);
    match outcome {
        Ok(outcome) => reporter.finish(outcome.status, outcome.exported).await,
        // The buildspec asks for what this executor cannot do: CodeBuild
        // would have run it, so it is not the build's failure.
        Err(e) => {
            reporter
                .phase(
                    phase_type::PROVISIONING,
                    PhaseStatus::Failed.as_str(),
                    0.0,
                    Some(format!(
                        "CLIENT_ERROR: the local executor cannot run this build: {e}"
                    )),
                )
                .await;
            reporter.finish(BuildStatus::Fault, Vec::new()).await;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Everything before the buildspec's first phase: the buildspec's text, the
/// secrets (PROVISIONING), the checkout (DOWNLOAD_SOURCE).
async fn prepare(
    inner: &Inner,
    event: &SecretsResolved,
    started: &BuildStarted,
    dir: &std::path::Path,
    stop: watch::Receiver<bool>,
    metadata: &[gantry_start_build::codebuild::Plain],
    reporter: &mut Reporter<'_>,
) -> Result<Build, Early> {
    let provisioning = Instant::now();
    let text = match &event.buildspec.body {
        BuildspecBody::Inline { inline } => inline.clone(),
        BuildspecBody::S3 { s3_key } => {
            let read = gantry_aws::artifacts::get_text(&inner.s3, names::BUCKET, s3_key).await;
            let missing = || format!("s3://{}/{s3_key}: no such key", names::BUCKET);
            read.map_err(|e| e.to_string())
                .and_then(|text| text.ok_or_else(missing))
                .map_err(|reason| Early {
                    status: BuildStatus::Failed,
                    phase: phase_type::DOWNLOAD_SOURCE,
                    context: format!("CLIENT_ERROR: cannot read the buildspec {reason}"),
                })?
        }
    };
    let spec = runnable(&text)
        .map(|(spec, _)| spec)
        .map_err(|diagnostics| Early {
            status: BuildStatus::Failed,
            phase: phase_type::DOWNLOAD_SOURCE,
            context: format!(
                "YAML_FILE_ERROR: {}",
                diagnostics
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        })?;
    // CodeBuild resolves PARAMETER_STORE variables while provisioning: the
    // buildspec's own, then start-build's (which win).
    let mut parameters: Vec<(String, String)> = Vec::new();
    let from_ssm = wanted(&spec.parameter_store, event, SecretStore::ParameterStore);
    let values = read_parameters(inner, from_ssm.iter().map(|(_, p)| *p))
        .await
        .map_err(|reason| Early {
            status: BuildStatus::Failed,
            phase: phase_type::PROVISIONING,
            context: format!("CLIENT_ERROR: Decrypted Variables Error: {reason}"),
        })?;
    for (variable, parameter) in from_ssm {
        let Some(value) = values.get(parameter) else {
            return Err(Early {
                status: BuildStatus::Failed,
                phase: phase_type::PROVISIONING,
                context: format!(
                    "CLIENT_ERROR: Decrypted Variables Error: {parameter}: the parameter has no value"
                ),
            });
        };
        parameters.retain(|(v, _)| v != variable);
        parameters.push((variable.to_owned(), value.clone()));
    }
    // Then SECRETS_MANAGER variables, from the local Secrets Manager.
    for (variable, reference) in wanted(&spec.secrets_manager, event, SecretStore::SecretsManager) {
        let value = read_secret(inner, reference)
            .await
            .map_err(|reason| Early {
                status: BuildStatus::Failed,
                phase: phase_type::PROVISIONING,
                context: format!("CLIENT_ERROR: Secrets Manager error: {reason}"),
            })?;
        parameters.retain(|(v, _)| v != variable);
        parameters.push((variable.to_owned(), value));
    }
    reporter
        .phase(
            phase_type::PROVISIONING,
            PhaseStatus::Succeeded.as_str(),
            provisioning.elapsed().as_secs_f64(),
            None,
        )
        .await;

    let downloading = Instant::now();
    let sha = started.source.commit_sha.as_str();
    source::checkout(&inner.repo, sha, dir).map_err(|e| Early {
        status: BuildStatus::Failed,
        phase: phase_type::DOWNLOAD_SOURCE,
        context: format!(
            "CLIENT_ERROR: reference not found for primary source and source version {sha} ({})",
            e.reason
        ),
    })?;
    reporter
        .phase(
            phase_type::DOWNLOAD_SOURCE,
            PhaseStatus::Succeeded.as_str(),
            downloading.elapsed().as_secs_f64(),
            None,
        )
        .await;

    let mut codebuild_env = source::codebuild_env(&Identity {
        id: started.build_id.as_str(),
        arn: started.build_arn.as_str(),
        number: started.build_number.unwrap_or(1),
        sha,
        source_version: sha,
        source_url: &started.source.repository.clone_url,
        src_dir: dir,
        initiator: INITIATOR,
        image: image(&inner.place),
    });
    // The project's variables win over the buildspec's, StartBuild's over
    // both, as in CodeBuild.
    codebuild_env.extend(inner.project_env.iter().cloned());
    codebuild_env.extend(
        metadata
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone())),
    );
    // And its plain ones: a named build's environment, a run's --vars.
    codebuild_env.extend(gantry_start_build::codebuild::plain_variables(event));
    Ok(Build {
        id: started.build_id.to_string(),
        source_dir: dir.to_owned(),
        runnable: spec,
        parameters,
        codebuild_env,
        base_env: source::inherited_env(),
        // A rule's or named build's timeout, as StartBuild's override.
        timeout: event
            .source
            .compute
            .timeout_minutes
            .map(|m| Duration::from_secs(u64::from(m) * 60))
            .unwrap_or(inner.timeout),
        log: source::log_file(started.build_id.as_str()),
        stop: Some(stop),
        place: inner.place.clone(),
    })
}

/// The values of the SSM parameters `names`, decrypted: one GetParameters
/// call per ten names (its limit), as CodeBuild resolves them. A name that
/// does not exist is an error naming it.
/// The (variable, reference) pairs CodeBuild resolves from `store`: the
/// buildspec's own, then start-build's (which win).
fn wanted<'a>(
    buildspec: &'a [(String, String)],
    event: &'a SecretsResolved,
    store: SecretStore,
) -> Vec<(&'a str, &'a str)> {
    buildspec
        .iter()
        .map(|(variable, reference)| (variable.as_str(), reference.as_str()))
        .chain(
            event
                .secrets
                .iter()
                .filter(|s| s.store == store)
                .map(|s| (s.variable.as_str(), s.parameter.as_str())),
        )
        .collect()
}

/// The value of a Secrets Manager reference
/// `secret-id[:json-key[:version-stage[:version-id]]]`, as CodeBuild
/// resolves it: the secret's string, or its JSON key's value.
async fn read_secret(inner: &Inner, reference: &str) -> Result<String, String> {
    let id = gantry_core::buildspec::secret_id(reference);
    let mut fields = reference[id.len()..].split(':').skip(1);
    let mut field = || fields.next().filter(|f| !f.is_empty());
    let (json_key, stage, version) = (field(), field(), field());
    let out = inner
        .secrets_manager
        .get_secret_value()
        .secret_id(id)
        .set_version_stage(stage.map(str::to_owned))
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .map_err(|e| format!("{id}: {}", describe_sdk_error(&e)))?;
    let text = out
        .secret_string()
        .ok_or_else(|| format!("{id}: the secret has no string value"))?;
    let Some(key) = json_key else {
        return Ok(text.to_owned());
    };
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| format!("{id}: the secret is not JSON, so it has no key {key}"))?;
    match json.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("{id}: the secret has no JSON key {key}")),
    }
}

async fn read_parameters<'n>(
    inner: &Inner,
    names: impl Iterator<Item = &'n str>,
) -> Result<std::collections::HashMap<String, String>, String> {
    let mut names: Vec<String> = names.map(str::to_owned).collect();
    names.sort_unstable();
    names.dedup();
    let mut values = std::collections::HashMap::new();
    for batch in names.chunks(10) {
        let out = inner
            .ssm
            .get_parameters()
            .set_names(Some(batch.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| describe_sdk_error(&e))?;
        if let Some(missing) = out.invalid_parameters().first() {
            return Err(format!("{missing}: parameter does not exist"));
        }
        for p in out.parameters() {
            if let (Some(name), Some(value)) = (p.name(), p.value()) {
                values.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    Ok(values)
}
