//! The local executor: a buildspec's phases run on this machine as
//! CodeBuild runs them, for `gantry build` (and the local stack).
//!
//! What it follows of CodeBuild (the "Build specification reference" and
//! "Build phase transitions"):
//! - phases `install`, `pre_build`, `build`, `post_build` in that order; a
//!   failed `install` or `pre_build` ends the build, a failed `build` still
//!   runs `post_build`; `on-failure: ABORT` ends the build at that phase,
//!   `CONTINUE` goes on to the next (the build still fails), `RETRY[-n]`
//!   runs the phase again up to n times (3 by default);
//! - `finally` runs after a phase's commands even when one failed; the
//!   phase succeeds only if both do;
//! - version 0.2 runs the whole build in one shell session (a variable set
//!   in `pre_build` is there in `post_build`), 0.1 a shell per command;
//!   `env.shell` picks `bash` or `sh` (`sh` when absent);
//! - `env.variables`, then `env.parameter-store` (resolved by the caller),
//!   then the `CODEBUILD_*` variables, which a buildspec cannot override;
//!   `CODEBUILD_BUILD_SUCCEEDING` turns to 0 once a phase fails;
//! - `env.exported-variables` are read from the session when the build ends;
//! - a timeout kills the shell and all it started: `TIMED_OUT`.
//!
//! Where it differs, deliberately: the commands run as the current user on
//! this machine (like `act` or CodeBuild's local agent without Docker), or
//! with [`Place::Docker`] in a container of an image already on the
//! machine (the source mounted at the same path, the image's own user);
//! `runtime-versions` are noted, not installed; `RETRY-<regex>` retries
//! whatever the error; `secrets-manager` references run only when the
//! caller resolved them (`gantry dev`, from its Secrets Manager; without
//! one the build cannot run, and says so); artifacts, reports and caches
//! are not uploaded. Values of `parameter-store` and `secrets-manager`
//! variables are masked in the log as CodeBuild masks them.

mod session;
pub mod source;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gantry_core::buildspec::runnable::{OnFailure, Phase, PhaseName, Runnable, Version};
use gantry_core::codebuild_events::BuildStatus;
use std::io::Write as _;
use tokio::time::Instant;

pub use session::{Ended, Place};
use session::{Limit, Session};

/// The image `--executor docker` runs builds in unless told otherwise: the
/// public equivalent of CodeBuild's managed Amazon Linux standard image.
pub const DEFAULT_IMAGE: &str = "public.ecr.aws/codebuild/amazonlinux-x86_64-standard:5.0";

/// One build to run.
#[derive(Debug, Clone)]
pub struct Build {
    /// `project:uuid`, as CodeBuild names builds.
    pub id: String,
    /// The checkout: the build's working directory (`CODEBUILD_SRC_DIR`).
    pub source_dir: PathBuf,
    pub runnable: Runnable,
    /// The values of `env.parameter-store` and `env.secrets-manager`, by
    /// variable: masked in the log.
    pub parameters: Vec<(String, String)>,
    /// `CODEBUILD_*` and other variables CodeBuild sets, which win over the
    /// buildspec's.
    pub codebuild_env: Vec<(String, String)>,
    /// From the caller's environment: `PATH`, `HOME` and the like.
    pub base_env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Where the whole log is kept.
    pub log: PathBuf,
    /// Turns `true` to stop the build (as StopBuild does): what runs is
    /// killed and the build ends `STOPPED`.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// On this machine, or in a container.
    pub place: Place,
}

/// How a phase ended, in CodeBuild's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseStatus {
    Succeeded,
    Failed,
    TimedOut,
    Stopped,
}

impl PhaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Succeeded => "SUCCEEDED",
            PhaseStatus::Failed => "FAILED",
            PhaseStatus::TimedOut => "TIMED_OUT",
            PhaseStatus::Stopped => "STOPPED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseResult {
    pub name: PhaseName,
    pub status: PhaseStatus,
    pub started_ms: u64,
    pub duration: Duration,
    /// Why it failed, as CodeBuild says it (`COMMAND_EXECUTION_ERROR: …`).
    pub message: Option<String>,
}

/// What the executor tells as it goes.
#[derive(Debug)]
pub enum Step<'a> {
    PhaseStarted(PhaseName),
    Line(PhaseName, &'a str),
    PhaseEnded(&'a PhaseResult),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: BuildStatus,
    pub phases: Vec<PhaseResult>,
    /// The first phase that failed.
    pub failed_phase: Option<PhaseName>,
    /// `env.exported-variables` as the build left them.
    pub exported: Vec<(String, String)>,
    pub log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("`env.shell: {0}` cannot run here; the local executor runs `bash` or `sh`")]
    Shell(String),
    #[error(
        "`env.secrets-manager` ({0}) has no value here: `gantry dev` resolves it from its local Secrets Manager, `gantry build` cannot"
    )]
    SecretsManager(String),
    #[error("a parameter-store variable has no value: {0}")]
    Parameter(String),
    #[error("cannot start `{shell}`: {reason}")]
    Spawn { shell: String, reason: String },
    #[error("the build log {path}: {reason}")]
    Log { path: String, reason: String },
    #[error("no Docker engine answers (DOCKER_HOST, or the default socket): {0}")]
    NoDocker(String),
    #[error(
        "the image {0} is not on this machine, and nothing is downloaded unless asked: `docker pull {0}`, or --image another"
    )]
    NoImage(String),
}

/// Values shorter than this are not masked: they would hide ordinary text.
const MIN_MASKED: usize = 3;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The shell `env.shell` names.
fn shell(runnable: &Runnable) -> Result<&'static str, ExecutorError> {
    match runnable.shell.as_deref() {
        None | Some("sh") | Some("/bin/sh") => Ok("sh"),
        Some("bash") => Ok("bash"),
        Some(other) => Err(ExecutorError::Shell(other.to_owned())),
    }
}

/// The environment the build's shell starts with.
fn environment(build: &Build) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| {
        env.retain(|(name, _)| name != k);
        env.push((k.to_owned(), v.to_owned()));
    };
    // A container has its image's own PATH, HOME and user.
    if build.place == Place::Host {
        for (k, v) in &build.base_env {
            set(k, v);
        }
    }
    for (k, v) in &build.runnable.variables {
        set(k, v);
    }
    for (k, v) in &build.parameters {
        set(k, v);
    }
    for (k, v) in &build.codebuild_env {
        set(k, v);
    }
    set("CODEBUILD_BUILD_SUCCEEDING", "1");
    env
}

struct Log {
    file: std::fs::File,
    path: PathBuf,
    secrets: Vec<String>,
}

impl Log {
    fn create(path: &Path, secrets: Vec<String>) -> Result<Log, ExecutorError> {
        let fail = |e: std::io::Error| ExecutorError::Log {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = std::fs::File::create(path).map_err(fail)?;
        Ok(Log {
            file,
            path: path.to_owned(),
            secrets,
        })
    }

    fn mask(&self, line: &str) -> String {
        let mut out = line.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    /// Masks `line`, keeps it in the file and hands it on.
    fn line(&mut self, phase: PhaseName, line: &str, observe: &mut (dyn FnMut(Step<'_>) + Send)) {
        let line = self.mask(line);
        // A log that cannot be written loses its lines, never the build.
        let _ = writeln!(self.file, "[{}] {line}", phase.codebuild_name());
        observe(Step::Line(phase, &line));
    }
}

/// Runs the build. `Err` only when it cannot run at all; a failing build
/// is an `Ok` outcome that says how it failed.
pub async fn run(
    build: &Build,
    observe: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<Outcome, ExecutorError> {
    let shell = shell(&build.runnable)?;
    if let Place::Docker { image } = &build.place {
        docker_ready(image).await?;
    }
    // `gantry dev` resolves them from its Secrets Manager; `gantry build`
    // has none to ask.
    for (variable, _) in &build.runnable.secrets_manager {
        if !build.parameters.iter().any(|(v, _)| v == variable) {
            return Err(ExecutorError::SecretsManager(variable.clone()));
        }
    }
    for (variable, _) in &build.runnable.parameter_store {
        if !build.parameters.iter().any(|(v, _)| v == variable) {
            return Err(ExecutorError::Parameter(variable.clone()));
        }
    }
    let secrets: Vec<String> = build
        .parameters
        .iter()
        .map(|(_, v)| v.clone())
        .filter(|v| v.len() >= MIN_MASKED)
        .collect();
    let mut log = Log::create(&build.log, secrets)?;
    let mut runner = Runner {
        build,
        shell,
        env: environment(build),
        marker: format!("__gantry_{}__", random_hex()),
        session: None,
        limit: Limit {
            deadline: Instant::now() + build.timeout,
            stop: build.stop.clone(),
        },
        succeeding: true,
        started: 0,
    };
    let mut phases = Vec::new();
    let mut failed_phase = None;
    let mut ended_early = None;
    for phase in &build.runnable.phases {
        let result = runner.phase(phase, &mut log, observe).await?;
        observe(Step::PhaseEnded(&result));
        let status = result.status;
        phases.push(result);
        match status {
            PhaseStatus::Succeeded => continue,
            PhaseStatus::TimedOut | PhaseStatus::Stopped => {
                failed_phase.get_or_insert(phase.name);
                ended_early = Some(status);
                break;
            }
            PhaseStatus::Failed => {
                failed_phase.get_or_insert(phase.name);
                runner.failing().await;
                let ends = match phase.on_failure {
                    OnFailure::Abort => true,
                    OnFailure::Continue => false,
                    OnFailure::Transitions | OnFailure::Retry { .. } => {
                        phase.name.failure_skips_to_end()
                    }
                };
                if ends {
                    break;
                }
            }
        }
    }
    let exported = runner.exported().await;
    if let Some(session) = runner.session.take() {
        session.close().await;
    }
    let status = match ended_early {
        Some(PhaseStatus::TimedOut) => BuildStatus::TimedOut,
        Some(_) => BuildStatus::Stopped,
        None if failed_phase.is_some() => BuildStatus::Failed,
        None => BuildStatus::Succeeded,
    };
    Ok(Outcome {
        status,
        phases,
        failed_phase,
        exported,
        log: log.path,
    })
}

struct Runner<'b> {
    build: &'b Build,
    shell: &'static str,
    env: Vec<(String, String)>,
    marker: String,
    /// Version 0.2's one session, started on first use and again if a
    /// command ends it.
    session: Option<Session>,
    limit: Limit,
    succeeding: bool,
    /// Sessions started so far (each container has its own name).
    started: u32,
}

impl Runner<'_> {
    async fn start(&mut self) -> Result<Session, ExecutorError> {
        self.started += 1;
        // `docker ps` says whose container it is: the build's id.
        let name = format!("{}-{}", source::log_name(&self.build.id), self.started);
        Session::start(
            self.shell,
            &self.build.source_dir,
            &self.env,
            &self.marker,
            &self.build.place,
            &name,
        )
        .await
        .map_err(|e| ExecutorError::Spawn {
            shell: self.shell.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Runs one command; `Ended` as the shell reported it.
    async fn command(
        &mut self,
        phase: PhaseName,
        command: &str,
        log: &mut Log,
        observe: &mut (dyn FnMut(Step<'_>) + Send),
    ) -> Result<Ended, ExecutorError> {
        let mut session = match (self.build.runnable.version, self.session.take()) {
            (Version::V02, Some(session)) => session,
            _ => self.start().await?,
        };
        // Lines are masked before anyone sees them.
        let mut line = |text: &str| log.line(phase, text, observe);
        let ended = session.run(command, &mut self.limit, &mut line).await;
        let ended = ended.map_err(|e| ExecutorError::Spawn {
            shell: self.shell.to_owned(),
            reason: e.to_string(),
        })?;
        match (self.build.runnable.version, ended) {
            (Version::V02, Ended::Status(_)) => self.session = Some(session),
            _ => session.close().await,
        }
        Ok(ended)
    }

    async fn phase(
        &mut self,
        phase: &Phase,
        log: &mut Log,
        observe: &mut (dyn FnMut(Step<'_>) + Send),
    ) -> Result<PhaseResult, ExecutorError> {
        observe(Step::PhaseStarted(phase.name));
        let started_ms = now_ms();
        let started = Instant::now();
        for (runtime, version) in &phase.runtime_versions {
            let note = format!(
                "runtime-versions: {runtime} {version} is not installed by the local executor; \
                 the machine's own is used"
            );
            log.line(phase.name, &note, observe);
        }
        let attempts = match phase.on_failure {
            OnFailure::Retry { attempts, .. } => attempts.saturating_add(1),
            _ => 1,
        };
        let mut outcome = (PhaseStatus::Succeeded, None);
        for _ in 0..attempts {
            outcome = self.attempt(phase, log, observe).await?;
            if outcome.0 != PhaseStatus::Failed {
                break;
            }
        }
        let (status, message) = outcome;
        Ok(PhaseResult {
            name: phase.name,
            status,
            started_ms,
            duration: started.elapsed(),
            message,
        })
    }

    /// The phase's commands, then its `finally`.
    async fn attempt(
        &mut self,
        phase: &Phase,
        log: &mut Log,
        observe: &mut (dyn FnMut(Step<'_>) + Send),
    ) -> Result<(PhaseStatus, Option<String>), ExecutorError> {
        let mut failure = None;
        for block in [&phase.commands, &phase.finally] {
            for command in block.iter() {
                let first_line = command.lines().next().unwrap_or_default();
                log.line(
                    phase.name,
                    &format!("Running command {first_line}"),
                    observe,
                );
                match self.command(phase.name, command, log, observe).await? {
                    Ended::Status(0) => continue,
                    Ended::TimedOut => {
                        return Ok((
                            PhaseStatus::TimedOut,
                            Some(format!("the build timed out running: {first_line}")),
                        ));
                    }
                    Ended::Stopped => {
                        return Ok((
                            PhaseStatus::Stopped,
                            Some(format!("the build was stopped running: {first_line}")),
                        ));
                    }
                    Ended::Status(code) | Ended::ShellExited(Some(code)) => {
                        failure.get_or_insert(format!(
                            "COMMAND_EXECUTION_ERROR: Error while executing command: {first_line}. Reason: exit status {code}"
                        ));
                    }
                    Ended::ShellExited(None) => {
                        failure.get_or_insert(format!(
                            "COMMAND_EXECUTION_ERROR: Error while executing command: {first_line}. Reason: the shell was killed"
                        ));
                    }
                }
                // The rest of this block is skipped; `finally` still runs.
                break;
            }
        }
        Ok(match failure {
            None => (PhaseStatus::Succeeded, None),
            Some(message) => (PhaseStatus::Failed, Some(log.mask(&message))),
        })
    }

    /// A phase failed: `CODEBUILD_BUILD_SUCCEEDING` is 0 from now on.
    async fn failing(&mut self) {
        if !self.succeeding {
            return;
        }
        self.succeeding = false;
        for (name, value) in &mut self.env {
            if name == "CODEBUILD_BUILD_SUCCEEDING" {
                *value = "0".to_owned();
            }
        }
        if let Some(session) = self.session.as_mut() {
            let _ = session
                .run(
                    "export CODEBUILD_BUILD_SUCCEEDING=0",
                    &mut self.limit,
                    &mut |_: &str| {},
                )
                .await;
        }
    }

    async fn exported(&mut self) -> Vec<(String, String)> {
        let names = &self.build.runnable.exported_variables;
        if names.is_empty() {
            return Vec::new();
        }
        // No session (no phase ran, or 0.1): a new one has the build's
        // environment, CODEBUILD_* included.
        if self.session.is_none() {
            self.session = self.start().await.ok();
        }
        let Some(session) = self.session.as_mut() else {
            return Vec::new();
        };
        // A few seconds past the deadline: reading values is not the build.
        let mut limit = Limit {
            deadline: self.limit.deadline.max(Instant::now()) + Duration::from_secs(5),
            stop: None,
        };
        session.values(names, &mut limit).await.unwrap_or_default()
    }
}

/// 16 random hex digits from the OS's hasher seed: the marker a command
/// cannot guess.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

/// The engine answers and has the image: checked before anything runs, so
/// that neither is mistaken for the build's own failure.
async fn docker_ready(image: &str) -> Result<(), ExecutorError> {
    let docker = session::docker_program();
    let version = tokio::process::Command::new(&docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| ExecutorError::NoDocker(format!("cannot run {}: {e}", docker.display())))?;
    if !version.status.success() {
        return Err(ExecutorError::NoDocker(
            String::from_utf8_lossy(&version.stderr).trim().to_owned(),
        ));
    }
    let inspect = tokio::process::Command::new(&docker)
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| ExecutorError::NoDocker(e.to_string()))?;
    if !inspect.status.success() {
        return Err(ExecutorError::NoImage(image.to_owned()));
    }
    Ok(())
}
