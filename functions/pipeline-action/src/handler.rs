//! Evaluate the job, then report its verdict to CodePipeline, always.

use std::future::Future;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::codepipeline_job::{CodePipelineJob, CodePipelineJobEvent};
use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};
use gantry_aws::describe_sdk_error;
use gantry_core::buildspec;
use gantry_core::diagnostic::{Severity, has_errors};
use gantry_core::events::cap;
use tokio::time::Instant;

use crate::artifact;

/// CodePipeline's limits: ExecutionDetails.summary 2048 characters,
/// FailureDetails.message 5000.
const SUMMARY_CHARS: usize = 2048;
const FAILURE_CHARS: usize = 5000;
/// Time kept back from the Lambda deadline to report before it hits.
pub const REPORT_MARGIN: Duration = Duration::from_secs(3);

pub struct Deps {
    /// The function's SDK configuration; the artifact is read with the
    /// job's credentials on top of it.
    pub sdk: SdkConfig,
    pub codepipeline: aws_sdk_codepipeline::Client,
}

/// What the action decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success {
        summary: String,
        path: String,
        digest: String,
        warnings: usize,
    },
    Failure {
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the CodePipeline job has no id; nothing to report to")]
    NoJobId,
    #[error("reporting job {job_id} to CodePipeline failed: {reason}")]
    Report { job_id: String, reason: String },
}

impl gantry_core::failure::ErrorKind for ReportError {
    fn kind(&self) -> &'static str {
        match self {
            ReportError::NoJobId => "pipeline-action.NoJobId",
            ReportError::Report { .. } => "pipeline-action.CodePipelineUnavailable",
        }
    }
}

/// `UserParameters`: a path (`ci/buildspec.yml`), or JSON
/// `{"buildspec": "ci/buildspec.yml", "artifact": "SourceOutput"}`.
#[derive(Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    #[serde(default)]
    pub buildspec: Option<String>,
    #[serde(default)]
    pub artifact: Option<String>,
}

pub fn parameters(user: Option<&str>) -> Result<Parameters, String> {
    let text = user.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Ok(Parameters::default());
    }
    if text.starts_with('{') {
        return serde_json::from_str(text)
            .map_err(|e| format!("UserParameters is not valid JSON of the form {{\"buildspec\": …, \"artifact\": …}}: {e}"));
    }
    Ok(Parameters {
        buildspec: Some(text.to_owned()),
        artifact: None,
    })
}

/// Reads and validates the buildspec of `job`. Every failure becomes a
/// [`Verdict::Failure`] with a message for the person reading the pipeline.
pub async fn evaluate(sdk: SdkConfig, job: CodePipelineJob) -> Verdict {
    let data = &job.data;
    let params = match parameters(
        data.action_configuration
            .configuration
            .user_parameters
            .as_deref(),
    ) {
        Ok(p) => p,
        Err(message) => return Verdict::Failure { message },
    };
    let path = params
        .buildspec
        .clone()
        .unwrap_or_else(|| "buildspec.yml".to_owned());
    let input = match artifact::choose(&data.input_artifacts, params.artifact.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            return Verdict::Failure {
                message: e.to_string(),
            };
        }
    };
    let artifact_name = input.name.clone().unwrap_or_else(|| "(unnamed)".to_owned());
    let creds = &data.artifact_credentials;
    let (Some(key_id), Some(secret)) =
        (creds.access_key_id.clone(), creds.secret_access_key.clone())
    else {
        return Verdict::Failure {
            message: artifact::ArtifactError::NoCredentials.to_string(),
        };
    };
    let credentials = aws_sdk_s3::config::Credentials::new(
        key_id,
        secret,
        creds.session_token.clone(),
        None,
        "codepipeline-job",
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .credentials_provider(credentials)
            .build(),
    );
    let text = match artifact::read_file(&s3, input, &path, &artifact_name).await {
        Ok(text) => text,
        Err(e) => {
            return Verdict::Failure {
                message: e.to_string(),
            };
        }
    };
    let diagnostics = buildspec::validate(&text);
    let warnings = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    if has_errors(&diagnostics) {
        let errors = diagnostics.len() - warnings;
        let mut message = format!("{path} in {artifact_name}: {errors} error(s)\n");
        for d in diagnostics.iter().filter(|d| d.severity == Severity::Error) {
            message.push_str(&format!("{path}:{d}\n"));
        }
        return Verdict::Failure {
            message: cap(message.trim_end(), FAILURE_CHARS * 3),
        };
    }
    let digest = buildspec::digest(&text);
    let summary = format!(
        "{path} in {artifact_name} is a valid buildspec ({warnings} warning{}); {digest}",
        if warnings == 1 { "" } else { "s" }
    );
    Verdict::Success {
        summary,
        path,
        digest,
        warnings,
    }
}

fn chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Sends the verdict to CodePipeline.
pub async fn report(
    client: &aws_sdk_codepipeline::Client,
    job_id: &str,
    verdict: &Verdict,
) -> Result<(), ReportError> {
    let fail = |reason: String| ReportError::Report {
        job_id: job_id.to_owned(),
        reason,
    };
    match verdict {
        Verdict::Success {
            summary,
            path,
            digest,
            warnings,
        } => {
            let details = ExecutionDetails::builder()
                .summary(chars(summary, SUMMARY_CHARS))
                .percent_complete(100)
                .build();
            client
                .put_job_success_result()
                .job_id(job_id)
                .execution_details(details)
                .output_variables("BUILDSPEC_DIGEST", digest)
                .output_variables("BUILDSPEC_PATH", path)
                .output_variables("BUILDSPEC_WARNINGS", warnings.to_string())
                .send()
                .await
                .map_err(|e| fail(describe_sdk_error(&e)))?;
        }
        Verdict::Failure { message } => {
            let details = FailureDetails::builder()
                .r#type(FailureType::JobFailed)
                .message(chars(message, FAILURE_CHARS))
                .build()
                .map_err(|e| fail(e.to_string()))?;
            client
                .put_job_failure_result()
                .job_id(job_id)
                .failure_details(details)
                .send()
                .await
                .map_err(|e| fail(describe_sdk_error(&e)))?;
        }
    }
    Ok(())
}

/// [`handle_with`] with the real [`evaluate`].
pub async fn handle(
    deps: &Deps,
    event: CodePipelineJobEvent,
    deadline: Instant,
) -> Result<Verdict, ReportError> {
    let sdk = deps.sdk.clone();
    handle_with(deps, event, deadline, move |job| evaluate(sdk, job)).await
}

/// Runs `work` on the job in its own task, bounded by `deadline` less
/// [`REPORT_MARGIN`], and reports whatever happened: its verdict, its
/// panic, or the timeout.
pub async fn handle_with<F, Fut>(
    deps: &Deps,
    event: CodePipelineJobEvent,
    deadline: Instant,
    work: F,
) -> Result<Verdict, ReportError>
where
    F: FnOnce(CodePipelineJob) -> Fut,
    Fut: Future<Output = Verdict> + Send + 'static,
{
    let job = event.code_pipeline_job;
    let Some(job_id) = job.id.clone() else {
        tracing::error!("CodePipeline job without an id");
        return Err(ReportError::NoJobId);
    };
    let cutoff = deadline.checked_sub(REPORT_MARGIN).unwrap_or(deadline);
    // Where a panic aborts the process, its hook reports the job.
    let task = tokio::spawn(crate::abort::holding(
        &job_id,
        &deps.codepipeline,
        deadline.into_std(),
        work(job),
    ));
    let verdict = match tokio::time::timeout_at(cutoff, task).await {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(join)) => {
            tracing::error!(
                job_id,
                panicked = join.is_panic(),
                "buildspec validation stopped unexpectedly"
            );
            Verdict::Failure {
                message: crate::abort::PANIC_MESSAGE.into(),
            }
        }
        Err(_) => {
            tracing::error!(job_id, "buildspec validation ran out of time");
            Verdict::Failure { message: "Gantry's buildspec validation did not finish before the Lambda timeout; the artifact may be too large or S3 too slow".into() }
        }
    };
    report(&deps.codepipeline, &job_id, &verdict).await?;
    match &verdict {
        Verdict::Success {
            path,
            digest,
            warnings,
            ..
        } => {
            tracing::info!(
                job_id,
                path,
                digest,
                warnings,
                outcome = "success",
                "pipeline action"
            );
        }
        Verdict::Failure { message } => {
            let first_line = message.lines().next().unwrap_or_default();
            tracing::info!(
                job_id,
                reason = first_line,
                outcome = "failure",
                "pipeline action"
            );
        }
    }
    Ok(verdict)
}
