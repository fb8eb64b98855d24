//! Resolve names, check them, publish.

use gantry_aws::artifacts::{self, S3Error};
use gantry_aws::bus::{EventBus, PublishError};
use gantry_aws::config_source::{ConfigError, ConfigSource};
use gantry_aws::on_first_use::OnFirstUse;
use gantry_aws::parameters::{self, ParameterError};
use gantry_aws::records::{RecordError, Records};
use gantry_aws::secrets_manager::{self, SecretCheckError};
use gantry_core::buildspec;
use gantry_core::config::{DEFAULT_APPROVAL_LABEL, ForkPolicy, TrustDomains};
use gantry_core::events::{
    BuildHeld, BuildRejected, BuildSource, BuildspecBody, BuildspecRef, BuildspecValidated,
    HoldCode, RejectedAt, SecretOrigin, SecretProblem, SecretProblemKind, SecretRef, SecretStore,
    SecretsResolved, VERSION, cap,
};
use gantry_core::records::Hold;

pub struct Deps {
    pub config: ConfigSource,
    pub ssm: aws_sdk_ssm::Client,
    /// `env.secrets-manager` references are checked by name here.
    pub secrets_manager: OnFirstUse<aws_sdk_secretsmanager::Client>,
    /// Which path each project's secrets must be under.
    pub domains: TrustDomains,
    pub s3: aws_sdk_s3::Client,
    /// Where buildspecs too large for an event live (`validated/`).
    pub bucket: String,
    /// The holds of forks' commits waiting for approval (`holds/`).
    pub records: Records,
    pub bus: EventBus,
}

/// What became of a `Buildspec Validated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Resolved(Box<SecretsResolved>),
    Rejected(Box<BuildRejected>),
    /// A fork's pull request waiting for a maintainer's approval.
    Held(Box<BuildHeld>),
}

/// Failures that a retry may cure; the invocation fails and EventBridge
/// retries it (then the dead-letter queue keeps it).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Parameters(#[from] ParameterError),
    #[error(transparent)]
    SecretsManager(#[from] SecretCheckError),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("the validated buildspec {location} no longer parses: {reason}")]
    Buildspec { location: String, reason: String },
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl gantry_core::failure::ErrorKind for HandlerError {
    fn kind(&self) -> &'static str {
        match self {
            HandlerError::Config(_) => "inject-secrets.ConfigUnavailable",
            HandlerError::Parameters(_) => "inject-secrets.SsmUnavailable",
            HandlerError::SecretsManager(_) => "inject-secrets.SecretsManagerUnavailable",
            HandlerError::S3(_) | HandlerError::Record(_) => "inject-secrets.S3Unavailable",
            HandlerError::Buildspec { .. } => "inject-secrets.BuildspecUnreadable",
            HandlerError::Publish(_) => "inject-secrets.EventBridgeUnavailable",
        }
    }
}

/// What the configuration says about this repository's builds.
struct Policy {
    secrets: Vec<(String, String)>,
    forks: ForkPolicy,
    approval_label: String,
    cancel_superseded: bool,
}

/// Every reference the build would get: the configuration's first (SSM
/// parameters), then the buildspec's own `env.parameter-store`, then its
/// `env.secrets-manager`; a reference given twice is kept once.
pub fn references(
    config: &[(String, String)],
    parameter_store: &[(String, String)],
    secrets_manager: &[(String, String)],
) -> Vec<SecretRef> {
    let mut out: Vec<SecretRef> =
        Vec::with_capacity(config.len() + parameter_store.len() + secrets_manager.len());
    let sources = [
        (SecretOrigin::Config, SecretStore::ParameterStore, config),
        (
            SecretOrigin::Buildspec,
            SecretStore::ParameterStore,
            parameter_store,
        ),
        (
            SecretOrigin::Buildspec,
            SecretStore::SecretsManager,
            secrets_manager,
        ),
    ];
    for (from, store, pairs) in sources {
        for (variable, parameter) in pairs {
            let seen = out
                .iter()
                .any(|r| r.variable == *variable && r.parameter == *parameter && r.store == store);
            if !seen {
                out.push(SecretRef {
                    variable: variable.clone(),
                    parameter: parameter.clone(),
                    from,
                    store,
                });
            }
        }
    }
    out
}

fn problem(r: &SecretRef, problem: SecretProblemKind) -> SecretProblem {
    SecretProblem {
        variable: r.variable.clone(),
        parameter: r.parameter.clone(),
        from: r.from,
        problem,
        store: r.store,
    }
}

/// The rejection's one line. `allowed`: the path this build may read
/// (`None`: its project is no trust domain of this deployment).
fn describe(problems: &[SecretProblem], project: &str, allowed: Option<&str>) -> String {
    let outside = match allowed {
        Some(path) => format!("is outside {path}, the only path builds of {project} may read"),
        None => format!(
            "cannot be read: {project} is not one of this deployment's projects (<ProjectPrefix><domain>)"
        ),
    };
    let parts: Vec<String> = problems
        .iter()
        .map(|p| {
            let what = match p.problem {
                SecretProblemKind::Missing => "does not exist",
                SecretProblemKind::Forbidden => "is not readable",
                SecretProblemKind::OutsidePrefix => outside.as_str(),
            };
            let whence = match p.from {
                SecretOrigin::Config => "gantry.yaml",
                SecretOrigin::Buildspec => p.store.buildspec_key(),
            };
            format!("{} ({whence}): {} {what}", p.variable, p.parameter)
        })
        .collect();
    format!(
        "{} secret reference{} cannot be resolved: {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        parts.join("; ")
    )
}

/// Why a run's extra variables are refused: a name that is not a
/// variable's or is reserved (`GANTRY_TRUSTED` must stay what start-build
/// says; `gantry run` checks names, but the bus takes any event from
/// whoever may put one), or a secret's name.
pub fn refused_variables(source: &BuildSource, refs: &[SecretRef]) -> Option<String> {
    let given = source.run.as_ref().map(|r| r.variables.as_slice())?;
    if let Some(why) = given
        .iter()
        .find_map(|v| gantry_core::config::check_variable_name(&v.name).err())
    {
        return Some(format!("the run's variables: {why}"));
    }
    let clashes: Vec<String> = given
        .iter()
        .filter_map(|v| {
            refs.iter().find(|r| r.variable == v.name).map(|r| {
                let from = match r.from {
                    SecretOrigin::Config => "gantry.yaml's secrets".to_owned(),
                    SecretOrigin::Buildspec => {
                        format!("the buildspec's {}", r.store.buildspec_key())
                    }
                };
                format!("`{}` (a secret in {from})", v.name)
            })
        })
        .collect();
    (!clashes.is_empty()).then(|| {
        format!(
            "the run's variable {} has a secret's name; a plain value never replaces a secret",
            clashes.join(", ")
        )
    })
}

fn is_untrusted_fork(source: &BuildSource) -> bool {
    source.fork && source.pull_request.is_some()
}

/// Decides, stores a rewritten buildspec if need be, and publishes.
pub async fn handle(deps: &Deps, event: BuildspecValidated) -> Result<Outcome, HandlerError> {
    let correlation_id = event.correlation_id.clone();
    let outcome = match decide(deps, event).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(correlation_id = %correlation_id, error = %e, "secrets not resolved; EventBridge will retry");
            return Err(e);
        }
    };
    let (source, kind, reason) = match &outcome {
        Outcome::Resolved(e) => {
            deps.bus.publish(e.as_ref()).await?;
            let names: Vec<&str> = e.secrets.iter().map(|s| s.parameter.as_str()).collect();
            let reason = match &e.withheld {
                Some(why) => why.clone(),
                None => format!("parameters {}", names.join(", ")),
            };
            (&e.source, "resolved", reason)
        }
        Outcome::Rejected(e) => {
            deps.bus.publish(e.as_ref()).await?;
            (&e.source, "rejected", e.reason.clone())
        }
        Outcome::Held(e) => {
            deps.bus.publish(e.as_ref()).await?;
            (&e.source, "held", e.message.clone())
        }
    };
    // Parameter names only: never a value.
    tracing::info!(
        correlation_id = %correlation_id,
        repo = %source.repository.full_name,
        commit = %source.commit_sha,
        outcome = kind,
        reason,
        "secrets"
    );
    Ok(outcome)
}

async fn policy(deps: &Deps, source: &BuildSource) -> Result<Policy, HandlerError> {
    let config = deps.config.get().await?;
    Ok(match config.repository(&source.repository.full_name) {
        Some(rules) => Policy {
            secrets: rules.secrets.clone(),
            forks: rules.forks,
            approval_label: rules.approval_label.clone(),
            cancel_superseded: rules.cancel_superseded,
        },
        // The configuration changed since the webhook read it: the safe
        // defaults (no secrets, forks untrusted).
        None => Policy {
            secrets: Vec::new(),
            forks: ForkPolicy::NoSecrets,
            approval_label: DEFAULT_APPROVAL_LABEL.to_owned(),
            cancel_superseded: true,
        },
    })
}

async fn decide(deps: &Deps, event: BuildspecValidated) -> Result<Outcome, HandlerError> {
    let policy = policy(deps, &event.source).await?;
    // Only an approval validate-buildspec checked (the labeller can push,
    // the commit was held) trusts a fork; the label's claim alone does not.
    let approved = event.approval.is_some();
    let untrusted_fork = is_untrusted_fork(&event.source);
    if untrusted_fork && policy.forks == ForkPolicy::Approval && !approved {
        let short = event.source.commit_sha.short();
        // What an approval will be checked against: this commit was held.
        if let Some(pr) = &event.source.pull_request {
            deps.records
                .put_hold(
                    &event.source.repository.full_name,
                    pr.number,
                    &Hold {
                        correlation_id: event.correlation_id.clone(),
                        commit_sha: event.source.commit_sha.clone(),
                        held_at_ms: gantry_core::events::now_ms(),
                    },
                )
                .await?;
        }
        return Ok(Outcome::Held(Box::new(BuildHeld {
            v: VERSION,
            message: cap(
                &format!(
                    "pull request from a fork: waiting for a maintainer to add the label `{}` to build {short}",
                    policy.approval_label
                ),
                140,
            ),
            correlation_id: event.correlation_id,
            project: event.project,
            source: event.source,
            code: HoldCode::Approval,
        })));
    }
    let trusted = !untrusted_fork || approved;
    if !trusted {
        let head = event
            .source
            .pull_request
            .as_ref()
            .and_then(|pr| pr.head_repository.clone())
            .unwrap_or_else(|| "a deleted fork".into());
        let buildspec = strip_secrets(deps, event.buildspec).await?;
        return Ok(Outcome::Resolved(Box::new(SecretsResolved {
            v: VERSION,
            correlation_id: event.correlation_id,
            project: event.project,
            source: event.source,
            buildspec,
            secrets: Vec::new(),
            trusted: false,
            withheld: Some(cap(
                &format!("pull request from {head}: built without secrets"),
                140,
            )),
            cancel_superseded: policy.cancel_superseded,
        })));
    }
    let refs = references(
        &policy.secrets,
        &event.buildspec.parameter_store,
        &event.buildspec.secrets_manager,
    );
    // A manual run's plain `--var` never stands in for a secret: CodeBuild
    // would take whichever came last, and a person with the bus could
    // swap a credential the build trusts for a value of their own.
    if let Some(reason) = refused_variables(&event.source, &refs) {
        return Ok(rejected(event, &reason, Vec::new()));
    }
    // Each project is a trust domain with its own secrets path; a reference
    // elsewhere (another repository's secrets) is refused by name before
    // any build starts, as the build's role would refuse it inside.
    // Secrets Manager secrets are named as parameters are: under the
    // domain's path (`/gantry/<domain>/…`), the one the build role reads.
    let (inside, outside): (Vec<&SecretRef>, Vec<&SecretRef>) = refs
        .iter()
        .partition(|r| deps.domains.allows(&event.project, r.name()));
    let mut problems: Vec<SecretProblem> = outside
        .iter()
        .map(|r| problem(r, SecretProblemKind::OutsidePrefix))
        .collect();
    // Each store asked by id, only about what it holds (an empty list asks
    // nothing): parameters by GetParameters without decryption, secrets
    // by DescribeSecret (metadata, never the value).
    let ids = |store: SecretStore| -> Vec<String> {
        inside
            .iter()
            .filter(|r| r.store == store)
            .map(|r| r.id().to_owned())
            .collect()
    };
    let checked_parameters =
        parameters::check(&deps.ssm, &ids(SecretStore::ParameterStore)).await?;
    let checked_secrets =
        secrets_manager::check(&deps.secrets_manager, &ids(SecretStore::SecretsManager)).await?;
    for r in inside {
        let checked = match r.store {
            SecretStore::ParameterStore => &checked_parameters,
            SecretStore::SecretsManager => &checked_secrets,
        };
        let id = r.id().to_owned();
        if checked.missing.contains(&id) {
            problems.push(problem(r, SecretProblemKind::Missing));
        } else if checked.forbidden.contains(&id) {
            problems.push(problem(r, SecretProblemKind::Forbidden));
        }
    }
    if !problems.is_empty() {
        let path = deps.domains.secrets_path(&event.project);
        let reason = describe(&problems, &event.project, path.as_deref());
        return Ok(rejected(event, &reason, problems));
    }
    Ok(Outcome::Resolved(Box::new(SecretsResolved {
        v: VERSION,
        correlation_id: event.correlation_id,
        project: event.project,
        source: event.source,
        buildspec: event.buildspec,
        secrets: refs,
        trusted: true,
        withheld: None,
        cancel_superseded: policy.cancel_superseded,
    })))
}

/// Refused at the secrets stage, with the secret references at fault.
fn rejected(event: BuildspecValidated, reason: &str, secrets: Vec<SecretProblem>) -> Outcome {
    Outcome::Rejected(Box::new(BuildRejected {
        v: VERSION,
        reason: cap(reason, 1024),
        buildspec_location: Some(event.buildspec.location.clone()),
        correlation_id: event.correlation_id,
        project: event.project,
        source: event.source,
        stage: RejectedAt::Secrets,
        diagnostics: Vec::new(),
        diagnostic_count: 0,
        secrets,
    }))
}

/// The buildspec an untrusted build runs: the validated one without its
/// `env.parameter-store` / `env.secrets-manager`.
async fn strip_secrets(deps: &Deps, spec: BuildspecRef) -> Result<BuildspecRef, HandlerError> {
    let text = match &spec.body {
        BuildspecBody::Inline { inline } => inline.clone(),
        BuildspecBody::S3 { s3_key } => artifacts::get_text(&deps.s3, &deps.bucket, s3_key)
            .await?
            .ok_or_else(|| HandlerError::Buildspec {
                location: spec.location.to_string(),
                reason: format!("s3://{}/{s3_key} is gone", deps.bucket),
            })?,
    };
    let stripped = buildspec::without_secrets(&text).map_err(|d| HandlerError::Buildspec {
        location: spec.location.to_string(),
        reason: d.to_string(),
    })?;
    let Some(stripped) = stripped else {
        return Ok(BuildspecRef {
            parameter_store: Vec::new(),
            secrets_manager: Vec::new(),
            ..spec
        });
    };
    let digest = buildspec::digest(&stripped);
    let body = artifacts::place_buildspec(&deps.s3, &deps.bucket, stripped, &digest).await?;
    Ok(BuildspecRef {
        origin: spec.origin,
        location: spec.location,
        digest,
        body,
        secrets_removed: true,
        parameter_store: Vec::new(),
        secrets_manager: Vec::new(),
        artifacts: spec.artifacts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn a_runs_variables_never_take_a_reserved_or_a_secrets_name() {
        let push = || -> BuildSource {
            serde_json::from_value(serde_json::json!({
                "trigger": "manual",
                "repository": {
                    "full_name": "octo-org/widgets", "owner": "octo-org", "name": "widgets",
                    "clone_url": "https://github.com/octo-org/widgets.git",
                    "html_url": "https://github.com/octo-org/widgets", "private": false
                },
                "commit_sha": "9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070",
                "git_ref": "refs/heads/main",
                "fork": false,
                "changed_paths": {"paths": [], "truncated": true}
            }))
            .expect("a source")
        };
        let run = |names: &[&str]| {
            let mut source = push();
            source.run = Some(gantry_core::events::RunRequest {
                by: "arn:aws:iam::123456789012:user/mona".into(),
                variables: names
                    .iter()
                    .map(|n| gantry_core::events::Variable {
                        name: (*n).into(),
                        value: "x".into(),
                    })
                    .collect(),
                schedule: None,
            });
            source
        };
        let refs = references(&[pair("NPM_TOKEN", "/gantry/npm")], &[], &[]);
        assert_eq!(refused_variables(&run(&["LEVEL"]), &refs), None);
        assert_eq!(refused_variables(&push(), &refs), None);
        for bad in ["GANTRY_TRUSTED", "CODEBUILD_SRC_DIR", "1X", "A-B"] {
            assert!(
                refused_variables(&run(&["LEVEL", bad]), &refs).is_some(),
                "{bad}"
            );
        }
        let why = refused_variables(&run(&["NPM_TOKEN"]), &refs).expect("refused");
        assert!(
            why.contains("`NPM_TOKEN` (a secret in gantry.yaml's secrets)"),
            "{why}"
        );
    }

    #[test]
    fn references_keep_both_sources_in_order_without_repeats() {
        let config = [
            pair("DOCKER_USERNAME", "/gantry/u"),
            pair("DOCKER_PASSWORD", "/gantry/p"),
        ];
        let spec = [
            pair("DOCKER_PASSWORD", "/gantry/p"),
            pair("NPM_TOKEN", "/gantry/npm"),
        ];
        let manager = [
            pair("API_KEY", "/gantry/api:key"),
            pair("API_KEY", "/gantry/api:key"),
        ];
        let refs = references(&config, &spec, &manager);
        let got: Vec<(&str, SecretOrigin, SecretStore)> = refs
            .iter()
            .map(|r| (r.variable.as_str(), r.from, r.store))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "DOCKER_USERNAME",
                    SecretOrigin::Config,
                    SecretStore::ParameterStore
                ),
                (
                    "DOCKER_PASSWORD",
                    SecretOrigin::Config,
                    SecretStore::ParameterStore
                ),
                (
                    "NPM_TOKEN",
                    SecretOrigin::Buildspec,
                    SecretStore::ParameterStore
                ),
                (
                    "API_KEY",
                    SecretOrigin::Buildspec,
                    SecretStore::SecretsManager
                ),
            ]
        );
        // A secret is held to its domain's path by its name, not its
        // json-key or version.
        assert_eq!(refs[3].name(), "/gantry/api");
    }

    #[test]
    fn the_rejection_names_each_parameter_and_its_variable() {
        let r = SecretRef {
            variable: "DOCKER_PASSWORD".into(),
            parameter: "/gantry/docker/password".into(),
            from: SecretOrigin::Config,
            store: SecretStore::ParameterStore,
        };
        let text = describe(
            &[problem(&r, SecretProblemKind::Missing)],
            "gantry-build",
            Some("/gantry/build/"),
        );
        assert_eq!(
            text,
            "1 secret reference cannot be resolved: DOCKER_PASSWORD (gantry.yaml): /gantry/docker/password does not exist"
        );
        let outside = describe(
            &[problem(&r, SecretProblemKind::OutsidePrefix)],
            "gantry-build",
            Some("/gantry/build/"),
        );
        assert!(
            outside.ends_with(
                "/gantry/docker/password is outside /gantry/build/, the only path builds of gantry-build may read"
            ),
            "{outside}"
        );
    }
}
