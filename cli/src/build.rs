//! `gantry build`: one build of a repository's commit on this machine, the
//! way CodeBuild would run it, without the stack: a clean checkout of the
//! commit (a clone with HEAD detached at it: nothing uncommitted), the buildspec
//! checked first, then its phases through the local executor.
//!
//! Exit 0 when the build succeeds, 1 when it fails (a buildspec CodeBuild
//! would refuse fails too, as CodeBuild fails it in DOWNLOAD_SOURCE), 2 when
//! it cannot run at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gantry_core::buildspec::runnable::runnable;
use gantry_core::codebuild_events::BuildStatus;
use gantry_core::diagnostic::Severity;
use gantry_local::executor::source::{self, CheckoutError, Identity};
use gantry_local::executor::{self, Build, ExecutorError, Outcome, Place, Step};

use crate::git::git;

pub struct BuildOptions {
    /// The git repository.
    pub repo: PathBuf,
    /// What to build: a branch, tag or commit.
    pub git_ref: String,
    /// A buildspec file to use instead of the commit's `buildspec.yml`.
    pub buildspec: Option<PathBuf>,
    /// `env.parameter-store` values, by SSM parameter name.
    pub parameters: Vec<(String, String)>,
    pub project: String,
    pub timeout: Duration,
    /// Keep the checkout after the build.
    pub keep: bool,
    pub place: Place,
    /// The project's variables (`--env`).
    pub env: Vec<(String, String)>,
}

/// Where builds run: `--executor shell|docker`, `--image`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExecutorOptions {
    /// `shell`: on this machine, as you. `docker`: in a container of
    /// --image (already on the machine: nothing is downloaded), through
    /// DOCKER_HOST or the default socket.
    #[arg(long, value_enum, default_value = "shell")]
    pub executor: ExecutorKind,
    /// The image `--executor docker` runs the build in.
    #[arg(long, default_value = executor::DEFAULT_IMAGE)]
    pub image: String,
    /// A variable the CodeBuild project sets, `NAME=VALUE` (repeat): e.g.
    /// IMAGE_REPO and CACHE_REPO for buildspecs/docker.yml, pointed at a
    /// registry of your own. Wins over the buildspec's `env.variables`, as
    /// the project's do in CodeBuild.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = variable)]
    pub env: Vec<(String, String)>,
}

/// `--env NAME=VALUE`: a variable's name (a shell variable's) and value.
pub fn variable(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("takes NAME=VALUE, not `{text}`"))?;
    // GANTRY_* and CODEBUILD_* are allowed here: locally they stand in for
    // what start-build and CodeBuild set.
    gantry_core::config::check_shell_name(name)?;
    Ok((name.to_owned(), value.to_owned()))
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    Shell,
    Docker,
}

impl ExecutorOptions {
    pub fn place(&self) -> Place {
        match self.executor {
            ExecutorKind::Shell => Place::Host,
            ExecutorKind::Docker => Place::Docker {
                image: self.image.clone(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{repo}: `{git_ref}` is not a commit of this repository: {reason}")]
    Ref {
        repo: String,
        git_ref: String,
        reason: String,
    },
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    #[error("reading the buildspec {path}: {reason}")]
    Buildspec { path: String, reason: String },
    #[error(
        "the buildspec reads parameter {parameter} (for {variable}); give it with --parameter {parameter}=VALUE"
    )]
    Parameter { variable: String, parameter: String },
    #[error(transparent)]
    Executor(#[from] ExecutorError),
}

/// `--parameter NAME=VALUE`: an SSM parameter's name and value.
pub fn name_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!(
            "takes NAME=VALUE (a parameter's or secret's name, its value), not `{text}`"
        )),
    }
}

/// How a build ended.
pub enum Ended {
    /// The buildspec has errors: CodeBuild would not run it.
    Refused,
    Ran(Outcome),
}

impl Ended {
    pub fn exit_code(&self) -> u8 {
        match self {
            Ended::Ran(outcome) if outcome.status == BuildStatus::Succeeded => 0,
            _ => 1,
        }
    }
}

/// Runs the build, printing its log to `out`.
pub async fn run(
    options: &BuildOptions,
    out: &mut (dyn Write + Send),
) -> Result<Ended, BuildError> {
    let repo_name = options.repo.display().to_string();
    let sha = git(
        &options.repo,
        &[
            "rev-parse",
            "--verify",
            &format!("{}^{{commit}}", options.git_ref),
        ],
    )
    .map_err(|reason| BuildError::Ref {
        repo: repo_name.clone(),
        git_ref: options.git_ref.clone(),
        reason,
    })?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let id = format!("{}:{uuid}", options.project);
    let dir = std::env::temp_dir().join(format!("gantry-build-{uuid}"));
    let result = build_in(options, out, &sha, &id, &dir).await;
    if !options.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        let _ = writeln!(out, "checkout kept in {}", dir.display());
    }
    result
}

async fn build_in(
    options: &BuildOptions,
    out: &mut (dyn Write + Send),
    sha: &str,
    id: &str,
    dir: &Path,
) -> Result<Ended, BuildError> {
    source::checkout(&options.repo, sha, dir)?;
    let (path, text) = match &options.buildspec {
        Some(path) => (path.clone(), std::fs::read_to_string(path)),
        None => {
            let path = dir.join("buildspec.yml");
            (
                PathBuf::from("buildspec.yml"),
                std::fs::read_to_string(path),
            )
        }
    };
    let shown = path.display().to_string();
    let text = text.map_err(|e| BuildError::Buildspec {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let short = sha.get(..7).unwrap_or(sha);
    let _ = writeln!(out, "gantry build {id} of {short} ({shown})");
    let spec = match runnable(&text) {
        Ok((spec, warnings)) => {
            for d in &warnings {
                let _ = writeln!(out, "{shown}:{d}");
            }
            spec
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                let _ = writeln!(out, "{shown}:{d}");
            }
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let _ = writeln!(
                out,
                "FAILED in DOWNLOAD_SOURCE: the buildspec has {errors} error(s); CodeBuild would not run it"
            );
            return Ok(Ended::Refused);
        }
    };
    let mut parameters = Vec::new();
    for (variable, parameter) in &spec.parameter_store {
        let value = options
            .parameters
            .iter()
            .find(|(name, _)| name == parameter)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| BuildError::Parameter {
                variable: variable.clone(),
                parameter: parameter.clone(),
            })?;
        parameters.push((variable.clone(), value));
    }
    let arn = format!("arn:aws:codebuild:local:000000000000:build/{id}");
    let repo_url = options.repo.display().to_string();
    let mut codebuild_env = source::codebuild_env(&Identity {
        id,
        arn: &arn,
        number: 1,
        sha,
        source_version: sha,
        source_url: &repo_url,
        src_dir: dir,
        initiator: "gantry-build",
        image: match &options.place {
            Place::Host => "local",
            Place::Docker { image } => image,
        },
    });
    codebuild_env.extend(options.env.iter().cloned());
    let build = Build {
        id: id.to_owned(),
        source_dir: dir.to_owned(),
        runnable: spec,
        parameters,
        codebuild_env,
        base_env: source::inherited_env(),
        timeout: options.timeout,
        log: source::log_file(id),
        stop: None,
        place: options.place.clone(),
    };
    let mut observe = |step: Step<'_>| {
        let _ = match step {
            Step::PhaseStarted(phase) => writeln!(out, "==> {}", phase.codebuild_name()),
            Step::Line(phase, text) => writeln!(out, "[{}] {text}", phase.codebuild_name()),
            Step::PhaseEnded(result) => writeln!(
                out,
                "<== {} {} in {:.1} s{}",
                result.name.codebuild_name(),
                result.status.as_str(),
                result.duration.as_secs_f64(),
                result
                    .message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        };
    };
    let outcome = executor::run(&build, &mut observe).await?;
    let _ = match outcome.failed_phase {
        Some(phase) => writeln!(
            out,
            "{} in {} — log: {}",
            outcome.status.as_str(),
            phase.codebuild_name(),
            outcome.log.display()
        ),
        None => writeln!(
            out,
            "{} — log: {}",
            outcome.status.as_str(),
            outcome.log.display()
        ),
    };
    for (name, value) in &outcome.exported {
        let _ = writeln!(out, "exported {name}={value}");
    }
    Ok(Ended::Ran(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_takes_a_shell_variable_name_and_any_value() {
        assert_eq!(
            variable("CACHE_REPO=localhost:5000/a=b"),
            Ok(("CACHE_REPO".into(), "localhost:5000/a=b".into()))
        );
        assert_eq!(variable("_X="), Ok(("_X".into(), String::new())));
        assert!(
            variable("GANTRY_TRUSTED=true").is_ok(),
            "stands in for start-build"
        );
        for bad in ["NOVALUE", "=x", "1X=y", "A-B=c", "A B=c"] {
            assert!(variable(bad).is_err(), "{bad}");
        }
    }
}
