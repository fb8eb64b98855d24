//! The local stack `gantry dev` and the end-to-end tests run against: the
//! bus, the rules of `template.yaml` with SQS targets, the SSM parameters,
//! the delivery bucket and the CodeBuild project, in the moto server.

use std::time::Duration;

use aws_config::SdkConfig;

use gantry_aws::describe_sdk_error;

use crate::tap::{Tap, TapError, TapSpec};
use crate::template::{self, EventRule};

/// Names the local stack uses; the deployed stack takes them from
/// `template.yaml`'s parameters.
pub mod names {
    pub const BUS: &str = "gantry";
    pub const BUCKET: &str = "gantry-dev-artifacts";
    pub const WEBHOOK_SECRET_PARAMETER: &str = "/gantry/webhook-secret";
    pub const CONFIG_PARAMETER: &str = "/gantry/config";
    pub const GITHUB_TOKEN_PARAMETER: &str = "/gantry/github-token";
    /// The GitHub App's private key (App mode), where `gantry app create`
    /// stores it.
    pub const GITHUB_APP_KEY_PARAMETER: &str = "/gantry/github-app/private-key";
    /// The local stack's one trust domain, `dev`: its secrets live under
    /// `/gantry/dev/`.
    pub const PROJECT: &str = "gantry-dev";
    /// As `ProjectPrefix` in the template.
    pub const PROJECT_PREFIX: &str = "gantry-";
    /// Where build secrets live, as `SecretsPathPrefix` in the template;
    /// each domain's under `<prefix><domain>/`.
    pub const SECRETS_PREFIX: &str = "/gantry/";
    /// The role a fork's pull request builds under (moto does not check it).
    pub const UNTRUSTED_ROLE: &str = "arn:aws:iam::123456789012:role/gantry-dev-untrusted-build";
    pub const REGION: &str = "us-east-1";
    /// The key build page links are signed with (created by the first
    /// link, as deployed).
    pub const PAGE_KEY_PARAMETER: &str = "/gantry/page-key";
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{action}: {reason}")]
    Aws { action: String, reason: String },
    #[error(transparent)]
    Template(#[from] template::TemplateError),
}

impl From<TapError> for StackError {
    fn from(e: TapError) -> StackError {
        StackError::Aws {
            action: e.action,
            reason: e.reason,
        }
    }
}

fn aws_err<E>(
    action: impl Into<String>,
) -> impl FnOnce(
    aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> StackError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let action = action.into();
    move |e| StackError::Aws {
        action,
        reason: describe_sdk_error(&e),
    }
}

fn build_err(
    action: &str,
) -> impl FnOnce(aws_smithy_types::error::operation::BuildError) -> StackError + '_ {
    move |e| StackError::Aws {
        action: action.to_owned(),
        reason: e.to_string(),
    }
}

/// The webhook's settings as `template.yaml` sets its environment, pointed
/// at the local stack's names; `overrides` replace single variables.
/// The environment `template.yaml` gives the functions, pointed at the
/// local stack; `overrides` replace single variables.
fn local_env(overrides: &[(&str, &str)], name: &str) -> Option<String> {
    if let Some((_, v)) = overrides.iter().find(|(k, _)| *k == name) {
        return Some((*v).to_owned());
    }
    match name {
        "WEBHOOK_SECRET_PARAMETER" => Some(names::WEBHOOK_SECRET_PARAMETER),
        "CONFIG_PARAMETER" => Some(names::CONFIG_PARAMETER),
        "GITHUB_TOKEN_PARAMETER" => Some(names::GITHUB_TOKEN_PARAMETER),
        "PROJECTS" => Some(names::PROJECT),
        "DELIVERY_BUCKET" | "ARTIFACT_BUCKET" => Some(names::BUCKET),
        "EVENT_BUS_NAME" => Some(names::BUS),
        "SECRETS_PATH_PREFIX" => Some(names::SECRETS_PREFIX),
        "PROJECT_PREFIX" => Some(names::PROJECT_PREFIX),
        "PAGE_KEY_PARAMETER" => Some(names::PAGE_KEY_PARAMETER),
        "UNTRUSTED_SERVICE_ROLE_ARN" => Some(names::UNTRUSTED_ROLE),
        // Locally a capacity refusal is retried quickly.
        "START_RETRY_ATTEMPTS" => Some("3"),
        "START_RETRY_BASE_MS" => Some("500"),
        _ => None,
    }
    .map(str::to_owned)
}

pub fn webhook_settings(
    overrides: &[(&str, &str)],
) -> Result<gantry_webhook::Settings, gantry_webhook::SettingsError> {
    gantry_webhook::Settings::from_env(|name| local_env(overrides, name))
}

pub fn inject_secrets_settings(
    overrides: &[(&str, &str)],
) -> Result<gantry_inject_secrets::Settings, gantry_inject_secrets::SettingsError> {
    gantry_inject_secrets::Settings::from_env(|name| local_env(overrides, name))
}

pub fn build_events_settings(
    overrides: &[(&str, &str)],
) -> Result<gantry_build_events::Settings, gantry_core::settings::SettingsError> {
    gantry_build_events::Settings::from_env(|name| local_env(overrides, name))
}

/// The build page's settings; `base_url` is where it is served.
pub fn build_page_settings(
    base_url: &str,
    overrides: &[(&str, &str)],
) -> Result<gantry_build_page::Settings, gantry_core::settings::SettingsError> {
    gantry_build_page::Settings::from_env(|name| {
        if name == gantry_aws::pages::PAGE_URL_VAR {
            return Some(base_url.to_owned());
        }
        local_env(overrides, name)
    })
}

pub fn reconcile_settings(
    overrides: &[(&str, &str)],
) -> Result<gantry_reconcile::Settings, gantry_core::settings::SettingsError> {
    gantry_reconcile::Settings::from_env(|name| local_env(overrides, name))
}

pub fn schedule_settings(
    overrides: &[(&str, &str)],
) -> Result<gantry_schedule::Settings, gantry_core::settings::SettingsError> {
    gantry_schedule::Settings::from_env(|name| local_env(overrides, name))
}

pub fn start_build_settings(
    overrides: &[(&str, &str)],
) -> Result<gantry_start_build::Settings, gantry_start_build::SettingsError> {
    gantry_start_build::Settings::from_env(|name| local_env(overrides, name))
}

pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    gantry_aws::sdk_loader()
        .region(aws_config::Region::new(names::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "gantry-dev",
        ))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .load()
        .await
}

/// What to create.
pub struct StackSpec<'a> {
    /// The text of `template.yaml`.
    pub template_yaml: &'a str,
    pub webhook_secret: &'a str,
    pub config_yaml: &'a str,
    /// (S3 key, text) of the default buildspecs to deploy to the bucket.
    pub buildspecs: &'a [(&'a str, &'a str)],
    /// A GitHub token to store as the SecureString the functions read.
    pub github_token: Option<&'a str>,
    /// More SecureStrings to store: (name, value), e.g. chat webhook URLs.
    pub secure_parameters: &'a [(&'a str, &'a str)],
    /// Secrets Manager secrets to create: (name, string value), for the
    /// buildspecs' `env.secrets-manager`.
    pub secrets: &'a [(&'a str, &'a str)],
}

/// A rule of the template, recreated with an SQS queue as its target.
#[derive(Debug, Clone)]
pub struct TappedRule {
    pub rule: EventRule,
    pub tap: Tap,
}

/// The id of the queue target `provision` gives each rule.
pub const DEV_TARGET_ID: &str = "dev-queue";

/// The created stack.
pub struct Stack {
    pub rules: Vec<TappedRule>,
}

/// Creates (or updates) everything in `spec` at the SDK's endpoint.
pub async fn provision(sdk: &SdkConfig, spec: &StackSpec<'_>) -> Result<Stack, StackError> {
    let rules = template::parse_rules(spec.template_yaml)?;
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let s3 = aws_sdk_s3::Client::new(sdk);

    match events.create_event_bus().name(names::BUS).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
        Err(e) => return Err(aws_err("create event bus")(e)),
    }
    match s3.create_bucket().bucket(names::BUCKET).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) => {}
        Err(e) => return Err(aws_err("create bucket")(e)),
    }
    put_parameter(
        &ssm,
        names::WEBHOOK_SECRET_PARAMETER,
        spec.webhook_secret,
        true,
    )
    .await?;
    put_parameter(&ssm, names::CONFIG_PARAMETER, spec.config_yaml, false).await?;
    if let Some(token) = spec.github_token {
        put_parameter(&ssm, names::GITHUB_TOKEN_PARAMETER, token, true).await?;
    }
    for (name, value) in spec.secure_parameters {
        put_parameter(&ssm, name, value, true).await?;
    }
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    for (name, value) in spec.secrets {
        secrets
            .create_secret()
            .name(*name)
            .secret_string(*value)
            .send()
            .await
            .map_err(aws_err(format!("create the secret {name}")))?;
    }
    for (key, text) in spec.buildspecs {
        s3.put_object()
            .bucket(names::BUCKET)
            .key(*key)
            .body(text.as_bytes().to_vec().into())
            .send()
            .await
            .map_err(aws_err(format!("upload {key}")))?;
    }
    create_project(sdk).await?;

    let mut tapped = Vec::with_capacity(rules.len());
    for rule in rules {
        let tap = Tap::create(
            sdk,
            TapSpec {
                bus: rule.bus.name(),
                queue: &format!("gantry-dev-{}", rule.logical_id),
                rule: &rule.logical_id,
                target_id: DEV_TARGET_ID,
                pattern: &rule.pattern,
            },
        )
        .await?;
        tapped.push(TappedRule { rule, tap });
    }
    Ok(Stack { rules: tapped })
}

async fn put_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    secure: bool,
) -> Result<(), StackError> {
    use aws_sdk_ssm::types::{ParameterTier, ParameterType};
    let kind = if secure {
        ParameterType::SecureString
    } else {
        ParameterType::String
    };
    // Standard parameters hold 4 KB; a larger gantry.yaml needs the
    // advanced tier (8 KB), as it would in a real account.
    let tier = if value.len() > 4096 {
        ParameterTier::Advanced
    } else {
        ParameterTier::Standard
    };
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .tier(tier)
        .overwrite(true)
        .send()
        .await
        .map_err(aws_err(format!("put parameter {name}")))?;
    Ok(())
}

async fn create_project(sdk: &SdkConfig) -> Result<(), StackError> {
    use aws_sdk_codebuild::types::{
        ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
        ProjectSource, SourceType,
    };
    let codebuild = aws_sdk_codebuild::Client::new(sdk);
    let source = ProjectSource::builder()
        .r#type(SourceType::Github)
        .location("https://github.com/gantry-ci/gantry-dev.git")
        .build()
        .map_err(build_err("project source"))?;
    let artifacts = ProjectArtifacts::builder()
        .r#type(ArtifactsType::NoArtifacts)
        .build()
        .map_err(build_err("project artifacts"))?;
    let environment = ProjectEnvironment::builder()
        .r#type(EnvironmentType::LinuxContainer)
        .image("aws/codebuild/standard:7.0")
        .compute_type(ComputeType::BuildGeneral1Small)
        .privileged_mode(true)
        .build()
        .map_err(build_err("project environment"))?;
    let created = codebuild
        .create_project()
        .name(names::PROJECT)
        .source(source)
        .artifacts(artifacts)
        .environment(environment)
        .service_role("arn:aws:iam::123456789012:role/gantry-dev-codebuild")
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_err("create CodeBuild project")(e)),
    }
}
