//! The StartBuild request Gantry makes, and the few answers it tells apart.

use aws_sdk_codebuild::types::{
    ArtifactNamespace, ArtifactPackaging, ArtifactsType, CacheType, CloudWatchLogsConfig,
    EnvironmentVariable, EnvironmentVariableType, LogsConfig, LogsConfigStatusType,
    ProjectArtifacts, ProjectCache, SourceAuth, SourceAuthType, SourceType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use gantry_aws::describe_sdk_error;
use gantry_core::codebuild_events::BuildStatus;
use gantry_core::events::{BuildspecBody, BuildspecRef, Compute, SecretStore, SecretsResolved};
use gantry_core::ids::{BuildArn, BuildId};

/// The prefix of an untrusted build's log stream (CodeBuild names it
/// `<prefix>/<build uuid>`); template.yaml's UntrustedBuildRole may write
/// only such streams.
pub use gantry_core::page::log::UNTRUSTED_LOG_STREAM_PREFIX;

/// A plain environment variable of the build: (name, value).
pub type Plain = (&'static str, String);

/// Gantry's metadata for the build, as plain values: they are passed as
/// environment variables, never spliced into commands.
pub fn metadata(event: &SecretsResolved) -> Vec<Plain> {
    let s = &event.source;
    let mut vars: Vec<Plain> = vec![
        ("GANTRY_REPOSITORY", s.repository.full_name.to_string()),
        ("GANTRY_COMMIT", s.commit_sha.to_string()),
        ("GANTRY_REF", s.git_ref.clone()),
        ("GANTRY_TRIGGER", s.trigger.as_str().to_owned()),
        ("GANTRY_DELIVERY_ID", event.correlation_id.to_string()),
        // 1, then 2, 3… for each Re-run from GitHub.
        ("GANTRY_ATTEMPT", s.attempt.to_string()),
        ("GANTRY_TRUSTED", event.trusted.to_string()),
        ("GANTRY_BUILDSPEC_DIGEST", event.buildspec.digest.clone()),
    ];
    if let Some(branch) = &s.branch {
        vars.push(("GANTRY_BRANCH", branch.clone()));
    }
    if let Some(tag) = &s.tag {
        vars.push(("GANTRY_TAG", tag.clone()));
    }
    // buildspecs/docker.yml falls back to the default branch's layer cache.
    if let Some(default) = &s.repository.default_branch {
        vars.push(("GANTRY_DEFAULT_BRANCH", default.clone()));
    }
    if let Some(pr) = &s.pull_request {
        vars.push(("GANTRY_PR_NUMBER", pr.number.to_string()));
        vars.push(("GANTRY_PR_BASE_BRANCH", pr.base_branch.clone()));
        vars.push(("GANTRY_PR_BASE_SHA", pr.base_sha.to_string()));
    }
    if let Some(member) = &s.member {
        vars.push(("GANTRY_BUILD", member.name.clone()));
    }
    if let Some(run) = &s.run {
        vars.push(("GANTRY_REQUESTED_BY", run.by.clone()));
    }
    vars
}

/// The plain variables the build's own settings add: the named build's
/// `environment` from gantry.yaml, then a manual run's `--var`s, which win
/// over a variable of the same name. Names were checked where they were
/// given: none is `GANTRY_`/`CODEBUILD_`, none is a secret's.
pub fn plain_variables(event: &SecretsResolved) -> Vec<(String, String)> {
    let s = &event.source;
    let mut vars: Vec<(String, String)> = Vec::new();
    let given = s
        .member
        .iter()
        .flat_map(|m| &m.environment)
        .chain(s.run.iter().flat_map(|r| &r.variables));
    for v in given {
        vars.retain(|(name, _)| name != &v.name);
        vars.push((v.name.clone(), v.value.clone()));
    }
    vars
}

/// What `buildspecOverride` gets: the text itself, or the S3 object's ARN
/// for one too large for the event.
pub fn buildspec_override(spec: &BuildspecRef, bucket: &str) -> String {
    match &spec.body {
        BuildspecBody::Inline { inline } => inline.clone(),
        BuildspecBody::S3 { s3_key } => format!("arn:aws:s3:::{bucket}/{s3_key}"),
    }
}

/// The build in the CodeBuild console.
pub fn console_url(region: &str, build_arn: &str, project: &str, build_id: &str) -> String {
    // arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>
    let account = build_arn.split(':').nth(4).unwrap_or_default();
    let id = build_id.replace(':', "%3A");
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/{account}/projects/{project}/build/{id}/?region={region}"
    )
}

/// Is this refusal CodeBuild being full (account or project concurrency),
/// which time cures?
pub fn is_capacity(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("AccountLimitExceededException")
        || message.is_some_and(|m| m.contains("Cannot have more than"))
}

/// What gantry.yaml may ask a build to run on: the operator's lists
/// (template.yaml's AllowedComputeTypes, AllowedImages and
/// MaxBuildTimeoutMinutes). A value outside them rejects the build with
/// the reason; the project's own settings need no permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeLimits {
    pub compute_types: Vec<String>,
    pub images: Vec<String>,
    pub max_timeout_minutes: u32,
}

/// The template's defaults, used where the environment names none.
pub const DEFAULT_ALLOWED_COMPUTE_TYPES: &[&str] = &[
    "BUILD_GENERAL1_SMALL",
    "BUILD_GENERAL1_MEDIUM",
    "BUILD_GENERAL1_LARGE",
];
pub const DEFAULT_ALLOWED_IMAGES: &[&str] = &[
    "aws/codebuild/standard:7.0",
    "aws/codebuild/amazonlinux-x86_64-standard:5.0",
];
pub const DEFAULT_MAX_TIMEOUT_MINUTES: u32 = 120;

impl Default for ComputeLimits {
    fn default() -> Self {
        ComputeLimits {
            compute_types: DEFAULT_ALLOWED_COMPUTE_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            images: DEFAULT_ALLOWED_IMAGES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            max_timeout_minutes: DEFAULT_MAX_TIMEOUT_MINUTES,
        }
    }
}

impl ComputeLimits {
    /// Why `compute` may not run here, if it may not.
    pub fn check(&self, compute: &Compute) -> Result<(), String> {
        let listed = |list: &[String]| {
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            }
        };
        if let Some(kind) = &compute.compute_type
            && !self.compute_types.contains(kind)
        {
            return Err(format!(
                "gantry.yaml asks for compute type {kind}, which this deployment does not allow (AllowedComputeTypes: {})",
                listed(&self.compute_types)
            ));
        }
        if let Some(image) = &compute.image
            && !self.images.contains(image)
        {
            return Err(format!(
                "gantry.yaml asks for image {image}, which this deployment does not allow (AllowedImages: {})",
                listed(&self.images)
            ));
        }
        if let Some(minutes) = compute.timeout_minutes
            && minutes > self.max_timeout_minutes
        {
            return Err(format!(
                "gantry.yaml asks for a {minutes}-minute timeout; this deployment allows at most {} (MaxBuildTimeoutMinutes)",
                self.max_timeout_minutes
            ));
        }
        Ok(())
    }
}

pub struct Request<'a> {
    pub event: &'a SecretsResolved,
    pub token: &'a str,
    pub bucket: &'a str,
    pub untrusted_role_arn: Option<&'a str>,
    pub github_connection_arn: Option<&'a str>,
}

/// A started build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub id: BuildId,
    pub arn: BuildArn,
    pub number: Option<i64>,
    pub logs_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// At its concurrency or account limit: wait and retry.
    #[error("CodeBuild is at its build limit: {0}")]
    Capacity(String),
    /// Will not start whatever we do (no such project, invalid input).
    #[error("CodeBuild refused the build: {0}")]
    Refused(String),
    /// The request could not be completed; a retry may work.
    #[error("CodeBuild StartBuild failed: {0}")]
    Unavailable(String),
}

fn variable(
    name: &str,
    value: &str,
    kind: EnvironmentVariableType,
) -> Result<EnvironmentVariable, StartError> {
    EnvironmentVariable::builder()
        .name(name)
        .value(value)
        .r#type(kind)
        .build()
        .map_err(|e| StartError::Refused(format!("environment variable {name}: {e}")))
}

/// Where a trusted build's `artifacts:` go: the bucket, under
/// `artifacts/<project>/<build id>/`, as files (no zip), so the build page
/// can link each one. A fork's build uploads none: its role may write
/// nothing in the bucket, where it could replace a trusted build's files.
pub fn artifacts_override(
    event: &SecretsResolved,
    bucket: &str,
) -> Result<Option<ProjectArtifacts>, StartError> {
    if !event.buildspec.artifacts || !event.trusted {
        return Ok(None);
    }
    ProjectArtifacts::builder()
        .r#type(ArtifactsType::S3)
        .location(bucket)
        .path(gantry_core::records::artifacts_path(&event.project))
        .namespace_type(ArtifactNamespace::BuildId)
        // "/": the files directly under <path>/<build id>/.
        .name("/")
        .packaging(ArtifactPackaging::None)
        .override_artifact_name(false)
        .build()
        .map(Some)
        .map_err(|e| StartError::Refused(format!("artifacts override: {e}")))
}

pub async fn start(
    client: &aws_sdk_codebuild::Client,
    req: &Request<'_>,
) -> Result<Started, StartError> {
    let event = req.event;
    let mut call = client
        .start_build()
        .project_name(&event.project)
        .idempotency_token(req.token)
        .source_type_override(SourceType::Github)
        .source_location_override(&event.source.repository.clone_url)
        .source_version(event.source.commit_sha.as_str())
        .buildspec_override(buildspec_override(&event.buildspec, req.bucket));
    for (name, value) in metadata(event) {
        call = call.environment_variables_override(variable(
            name,
            &value,
            EnvironmentVariableType::Plaintext,
        )?);
    }
    for (name, value) in plain_variables(event) {
        call = call.environment_variables_override(variable(
            &name,
            &value,
            EnvironmentVariableType::Plaintext,
        )?);
    }
    let compute = &event.source.compute;
    if let Some(kind) = &compute.compute_type {
        call =
            call.compute_type_override(aws_sdk_codebuild::types::ComputeType::from(kind.as_str()));
    }
    if let Some(image) = &compute.image {
        call = call.image_override(image);
    }
    if let Some(minutes) = compute.timeout_minutes {
        call = call.timeout_in_minutes_override(i32::try_from(minutes).unwrap_or(i32::MAX));
    }
    for secret in &event.secrets {
        let kind = match secret.store {
            SecretStore::ParameterStore => EnvironmentVariableType::ParameterStore,
            SecretStore::SecretsManager => EnvironmentVariableType::SecretsManager,
        };
        call = call.environment_variables_override(variable(
            &secret.variable,
            &secret.parameter,
            kind,
        )?);
    }
    if !event.trusted {
        let role = req.untrusted_role_arn.ok_or_else(|| {
            StartError::Refused(
                "a fork's pull request builds only under the untrusted role, and UNTRUSTED_SERVICE_ROLE_ARN is not set".into(),
            )
        })?;
        // Its log goes to streams under `untrusted/`, the only ones the
        // untrusted role may write: a fork's build cannot write lines into a
        // trusted build's log.
        let logs = CloudWatchLogsConfig::builder()
            .status(LogsConfigStatusType::Enabled)
            .stream_name(UNTRUSTED_LOG_STREAM_PREFIX)
            .build()
            .map_err(|e| StartError::Refused(format!("logs config: {e}")))?;
        // Nor does it use the project's cache (CodeBuild's local caches, or
        // S3): what it left there a trusted build would read next.
        let no_cache = ProjectCache::builder()
            .r#type(CacheType::NoCache)
            .build()
            .map_err(|e| StartError::Refused(format!("cache override: {e}")))?;
        call = call
            .service_role_override(role)
            .logs_config_override(LogsConfig::builder().cloud_watch_logs(logs).build())
            .cache_override(no_cache);
    }
    if let Some(artifacts) = artifacts_override(event, req.bucket)? {
        call = call.artifacts_override(artifacts);
    }
    if let Some(arn) = req.github_connection_arn {
        let auth = SourceAuth::builder()
            .r#type(SourceAuthType::Codeconnections)
            .resource(arn)
            .build()
            .map_err(|e| StartError::Refused(format!("source auth: {e}")))?;
        call = call.source_auth_override(auth);
    }
    match call.send().await {
        Ok(out) => {
            let build = out.build_value();
            let id = build.and_then(|b| b.id()).unwrap_or_default().to_owned();
            if id.is_empty() {
                return Err(StartError::Unavailable(
                    "StartBuild answered without a build id".into(),
                ));
            }
            Ok(Started {
                arn: build.and_then(|b| b.arn()).unwrap_or_default().into(),
                number: build.and_then(|b| b.build_number()),
                logs_url: build
                    .and_then(|b| b.logs())
                    .and_then(|l| l.deep_link())
                    .map(str::to_owned),
                id: id.into(),
            })
        }
        Err(e) => {
            let described = describe_sdk_error(&e);
            if is_capacity(e.code(), e.message()) {
                Err(StartError::Capacity(described))
            } else if e.code() == Some("AccessDeniedException")
                || e.as_service_error().is_some_and(|s| {
                    s.is_invalid_input_exception() || s.is_resource_not_found_exception()
                })
            {
                // Retrying will not grant the permission or create the
                // project: the build is rejected with the reason.
                Err(StartError::Refused(described))
            } else {
                Err(StartError::Unavailable(described))
            }
        }
    }
}

/// What StopBuild made of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was running and is stopping now.
    Stopped,
    /// It had already finished (or is gone): nothing to stop.
    NotRunning,
}

pub async fn stop(client: &aws_sdk_codebuild::Client, build_id: &str) -> Result<Stopped, String> {
    match client.stop_build().id(build_id).send().await {
        Ok(out) => {
            let status = out.build_value().and_then(|b| b.build_status());
            Ok(match status {
                Some(s)
                    if matches!(
                        BuildStatus::parse(s.as_str()),
                        BuildStatus::Stopped | BuildStatus::InProgress
                    ) =>
                {
                    Stopped::Stopped
                }
                _ => Stopped::NotRunning,
            })
        }
        // CodeBuild refuses to stop a finished build with InvalidInput.
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_invalid_input_exception() || s.is_resource_not_found_exception()
            }) =>
        {
            Ok(Stopped::NotRunning)
        }
        Err(e) => Err(describe_sdk_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_operator_listed_runs_and_the_reason_names_the_list() {
        let limits = ComputeLimits::default();
        assert_eq!(limits.check(&Compute::default()), Ok(()));
        let allowed = Compute {
            compute_type: Some("BUILD_GENERAL1_LARGE".into()),
            image: Some("aws/codebuild/standard:7.0".into()),
            timeout_minutes: Some(120),
        };
        assert_eq!(limits.check(&allowed), Ok(()));
        let too_big = Compute {
            compute_type: Some("BUILD_GENERAL1_2XLARGE".into()),
            ..allowed.clone()
        };
        let why = limits.check(&too_big).unwrap_err();
        assert!(why.contains("BUILD_GENERAL1_2XLARGE"), "{why}");
        assert!(
            why.contains("AllowedComputeTypes: BUILD_GENERAL1_SMALL"),
            "{why}"
        );
        let image = Compute {
            image: Some("attacker/miner:latest".into()),
            ..allowed.clone()
        };
        assert!(limits.check(&image).unwrap_err().contains("AllowedImages"));
        let long = Compute {
            timeout_minutes: Some(121),
            ..allowed
        };
        assert!(
            limits
                .check(&long)
                .unwrap_err()
                .contains("at most 120 (MaxBuildTimeoutMinutes)")
        );
        let none = ComputeLimits {
            compute_types: Vec::new(),
            ..ComputeLimits::default()
        };
        assert!(
            none.check(&too_big)
                .unwrap_err()
                .contains("AllowedComputeTypes: none")
        );
    }

    #[test]
    fn account_limits_and_queue_limits_are_capacity() {
        assert!(is_capacity(Some("AccountLimitExceededException"), None));
        assert!(is_capacity(
            Some("InvalidInputException"),
            Some("Cannot have more than 1 builds in queue for the account")
        ));
        assert!(!is_capacity(
            Some("InvalidInputException"),
            Some("Invalid source version")
        ));
        assert!(!is_capacity(None, None));
    }

    #[test]
    fn the_console_link_names_region_account_project_and_build() {
        let url = console_url(
            "eu-west-1",
            "arn:aws:codebuild:eu-west-1:123456789012:build/gantry-build:1b2c",
            "gantry-build",
            "gantry-build:1b2c",
        );
        assert_eq!(
            url,
            "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/123456789012/projects/gantry-build/build/gantry-build%3A1b2c/?region=eu-west-1"
        );
    }
}
