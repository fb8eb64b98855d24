//! `gantry run`: a build of a commit, now, by hand. It resolves the ref
//! through GitHub, names who asked (the caller's AWS identity), counts the
//! commit's earlier builds for the attempt number, and publishes a `Build
//! Requested` (trigger `manual`), or one per named build, on the bus. The
//! chain then treats it as it treats a push: the buildspec is validated,
//! the secrets checked, statuses posted, chats told.
//!
//! Who may run a build is who may put events on the bus (its IAM policy).
//! The identity in the event is the one the credentials resolve to
//! (`sts:GetCallerIdentity`), for the build page and the logs.

use std::path::PathBuf;

use gantry_aws::bus::{Entry, EventBus, PublishError};
use gantry_aws::github::contents::{GitHubClient, GitHubError};
use gantry_aws::records::{RecordError, Records};
use gantry_aws::secrets::Secret;
use gantry_core::config::{Config, check_variable_name};
use gantry_core::events::{BuildSource, RunRequest, Trigger, Variable, now_ms};
use gantry_core::webhook::{Publication, fan_out};

/// The deployed configuration's parameter (template.yaml's default).
pub const DEFAULT_CONFIG_PARAMETER: &str = "/gantry/config";

#[derive(clap::Args, Debug, Clone)]
pub struct RunOptions {
    /// The repository, `owner/name`, as gantry.yaml names it.
    pub repository: String,
    /// The branch or tag to build (its head now); default: the
    /// repository's default branch.
    #[arg(long = "ref", conflicts_with = "sha")]
    pub git_ref: Option<String>,
    /// The commit to build.
    #[arg(long)]
    pub sha: Option<String>,
    /// Only the builds on this CodeBuild project (with `builds:`), or this
    /// project instead of the repository's.
    #[arg(long)]
    pub project: Option<String>,
    /// Only this named build of `builds:` (repeat).
    #[arg(long = "build", value_name = "NAME")]
    pub builds: Vec<String>,
    /// A plain environment variable for the build: NAME=VALUE (repeat).
    /// Never a secret's name.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = variable)]
    pub vars: Vec<(String, String)>,
    /// The EventBridge bus.
    #[arg(long, default_value = "gantry")]
    pub bus: String,
    /// gantry.yaml to read the repository's rules from, instead of the
    /// deployed one in SSM.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The SSM parameter holding the deployed gantry.yaml.
    #[arg(long, default_value = DEFAULT_CONFIG_PARAMETER)]
    pub config_parameter: String,
    /// The artifact bucket (stack output ArtifactBucketName; default
    /// $GANTRY_BUCKET), to count the commit's earlier builds: the attempt
    /// number. Without it, 1.
    #[arg(long)]
    pub bucket: Option<String>,
    /// GitHub's API (default $GITHUB_API_URL, else api.github.com): GitHub
    /// Enterprise Server, or `gantry dev`'s stand-in.
    #[arg(long)]
    pub github_api_url: Option<String>,
}

fn variable(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("takes NAME=VALUE, not `{text}`"))?;
    check_variable_name(name)?;
    Ok((name.to_owned(), value.to_owned()))
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("the configuration is invalid:\n{0}")]
    Config(String),
    #[error("cannot read the configuration from SSM parameter {parameter}: {reason}")]
    ConfigParameter { parameter: String, reason: String },
    #[error("{0} is not configured in gantry.yaml")]
    NotConfigured(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("cannot tell who is asking (sts:GetCallerIdentity): {0}")]
    Identity(String),
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// What was requested.
#[derive(Debug, Clone)]
pub struct Requested {
    pub by: String,
    pub commit: String,
    /// (correlation id, project, named build, attempt) of each build.
    pub builds: Vec<(String, String, Option<String>, u32)>,
}

/// The repository's rules, from a file or the deployed parameter.
async fn config(options: &RunOptions, sdk: &aws_config::SdkConfig) -> Result<Config, RunError> {
    let text = match &options.config {
        Some(path) => std::fs::read_to_string(path).map_err(|e| RunError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?,
        None => aws_sdk_ssm::Client::new(sdk)
            .get_parameter()
            .name(&options.config_parameter)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| RunError::ConfigParameter {
                parameter: options.config_parameter.clone(),
                reason: gantry_aws::describe_sdk_error(&e),
            })?
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_owned(),
    };
    Config::parse(&text)
        .map(|(config, _)| config)
        .map_err(|diags| {
            RunError::Config(
                diags
                    .iter()
                    .map(|d| format!("  {d}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })
}

/// Runs `gantry run`: resolves, checks and publishes.
pub async fn run(
    options: &RunOptions,
    sdk: &aws_config::SdkConfig,
    token: Option<&Secret>,
) -> Result<Requested, RunError> {
    let config = config(options, sdk).await?;
    let rules = config
        .repository(&options.repository)
        .ok_or_else(|| RunError::NotConfigured(options.repository.clone()))?;
    for name in &options.builds {
        if rules.member(name).is_none() {
            return Err(RunError::Refused(format!(
                "`{name}` is not one of {}'s builds",
                options.repository
            )));
        }
    }
    // A plain value never stands in for a secret (inject-secrets refuses
    // the buildspec's too; these are refused before anything is asked).
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in &options.vars {
        if seen.contains(&name.as_str()) {
            return Err(RunError::Refused(format!("--var {name} is given twice")));
        }
        seen.push(name);
        if rules.secrets.iter().any(|(secret, _)| secret == name) {
            return Err(RunError::Refused(format!(
                "--var {name}: `{name}` is a secret in gantry.yaml; a plain value never replaces a secret"
            )));
        }
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let api = options
        .github_api_url
        .clone()
        .or_else(|| env("GITHUB_API_URL"))
        .unwrap_or_else(|| "https://api.github.com".to_owned());
    let github = GitHubClient::new(&api);
    let repository = github.repository(&options.repository, token).await?;
    let (commit, git_ref) = match (&options.sha, &options.git_ref) {
        (Some(sha), _) => {
            let sha = sha.to_ascii_lowercase();
            if !(matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(RunError::Refused(format!(
                    "--sha {sha}: a commit is 40 (or 64) hex digits"
                )));
            }
            (sha.clone(), sha)
        }
        (None, git_ref) => {
            let name = git_ref
                .clone()
                .or_else(|| repository.default_branch.clone())
                .unwrap_or_else(|| "main".to_owned());
            // A tag by its full name; anything else names a branch.
            let (short, full) = match name.strip_prefix("refs/tags/") {
                Some(tag) => (tag.to_owned(), name.clone()),
                None => {
                    let branch = name.strip_prefix("refs/heads/").unwrap_or(&name);
                    (branch.to_owned(), format!("refs/heads/{branch}"))
                }
            };
            let sha = github
                .branch_head(&options.repository, &short, token)
                .await?;
            (sha, full)
        }
    };
    let by = caller(sdk).await?;
    let source = BuildSource::asked_for(
        Trigger::Manual,
        repository,
        commit.clone().into(),
        git_ref,
        RunRequest {
            by: by.clone(),
            variables: options
                .vars
                .iter()
                .map(|(name, value)| Variable {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            schedule: None,
        },
        now_ms(),
    );
    let mut only = options.builds.clone();
    if let Some(project) = &options.project
        && !rules.builds.is_empty()
    {
        let on: Vec<String> = rules
            .builds
            .iter()
            .filter(|m| &m.project == project)
            .filter(|m| only.is_empty() || only.contains(&m.name))
            .map(|m| m.name.clone())
            .collect();
        if on.is_empty() {
            return Err(RunError::Refused(format!(
                "none of {}'s builds is on project {project}",
                options.repository
            )));
        }
        only = on;
    }
    let correlation_id = format!("manual-{}", uuid::Uuid::new_v4().simple());
    let mut publication = fan_out(rules, source, &correlation_id, &only);
    if let (Some(project), Publication::Requested(e)) = (&options.project, &mut publication) {
        e.project = project.clone();
    }
    let earlier = match options.bucket.clone().or_else(|| env("GANTRY_BUCKET")) {
        Some(bucket) => {
            Records::new(aws_sdk_s3::Client::new(sdk), bucket)
                .recent_builds(&options.repository, 100)
                .await?
        }
        None => Vec::new(),
    };
    let mut requested = Requested {
        by,
        commit: commit.clone(),
        builds: Vec::new(),
    };
    let mut entries = Vec::new();
    for item in publication.items() {
        let Publication::Requested(e) = item else {
            continue;
        };
        let mut e = e.clone();
        let member = e.source.member.as_ref().map(|m| m.name.clone());
        let before = earlier
            .iter()
            .filter(|r| {
                r.source.commit_sha.as_str().eq_ignore_ascii_case(&commit)
                    && r.project == e.project
                    && r.source.member.as_ref().map(|m| &m.name) == member.as_ref()
            })
            .count();
        e.source.attempt = u32::try_from(before).unwrap_or(u32::MAX).saturating_add(1);
        requested.builds.push((
            e.correlation_id.to_string(),
            e.project.clone(),
            member,
            e.source.attempt,
        ));
        entries.push(Entry::new(&e)?);
    }
    EventBus::new(aws_sdk_eventbridge::Client::new(sdk), &options.bus)
        .publish_entries(entries)
        .await?;
    Ok(requested)
}

/// The ARN the environment's credentials are.
async fn caller(sdk: &aws_config::SdkConfig) -> Result<String, RunError> {
    let identity = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| RunError::Identity(gantry_aws::describe_sdk_error(&e)))?;
    identity
        .arn()
        .map(str::to_owned)
        .ok_or_else(|| RunError::Identity("no ARN in the answer".into()))
}
