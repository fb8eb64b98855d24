//! CodePipeline executions that run Gantry's invoke action: their state on
//! the source commit, as the status `gantry/pipeline/<pipeline>`.
//!
//! The execution state change event names the pipeline and the execution
//! but not the commit; `GetPipelineExecution` gives the source revisions,
//! and the first one that is a GitHub commit (through a CodeConnections
//! connection, or the older GitHub OAuth source) gets the status. Like a
//! build's, the status is posted once per (execution, state) and never goes
//! back to `pending` once the execution has ended.

use gantry_aws::describe_sdk_error;
use gantry_aws::records::Acquired;
use gantry_core::github::statuses::{self, CommitStatus};
use gantry_core::records::{Effect, Holder};

use crate::handler::{Deps, HandlerError};
use gantry_aws::report::{Report, post_status};

pub use gantry_core::pipeline_events::{ExecutionEvent, ExecutionState};

/// Reads the event's `region` and `detail.pipeline`, `detail.execution-id`,
/// `detail.state` (see [`gantry_core::pipeline_events::parse_event`]).
pub fn parse_event(event: &serde_json::Value) -> Result<ExecutionEvent, HandlerError> {
    gantry_core::pipeline_events::parse_event(event).map_err(|e| HandlerError::Event(e.0))
}

/// A commit on GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubCommit {
    /// `owner/name`.
    pub repo: String,
    pub sha: String,
}

/// The GitHub commit a source revision of `GetPipelineExecution` names, if
/// it is one. Two shapes of `revisionUrl` are GitHub's:
/// - CodeConnections: `https://<region>.console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn=…&referenceType=COMMIT&FullRepositoryId=owner/repo&Commit=<sha>`
///   (also Bitbucket's and GitLab's; their `revisionSummary` says which
///   with its `ProviderType`);
/// - the older GitHub (OAuth) source: `https://github.com/owner/repo/commit/<sha>`.
///
/// The commit is the full `revisionId` when it is one, else the URL's.
pub fn github_commit(
    revision_url: &str,
    revision_id: Option<&str>,
    revision_summary: Option<&str>,
) -> Option<GitHubCommit> {
    let rest = revision_url.strip_prefix("https://")?;
    let (host, path_and_query) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.to_ascii_lowercase();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let (repo, url_sha) = if host == "github.com" || host == "www.github.com" {
        let mut parts = path.trim_end_matches('/').split('/');
        let (Some(owner), Some(name), Some("commit"), Some(sha), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        (format!("{owner}/{name}"), sha.to_owned())
    } else if (host.ends_with(".console.aws.amazon.com")
        || host == "console.aws.amazon.com"
        || host.ends_with(".console.amazonaws.cn")
        || host == "console.amazonaws.cn")
        && path.trim_end_matches('/') == "codesuite/settings/connections/redirect"
    {
        // Through a connection: GitHub only, not Bitbucket, GitLab or a
        // GitHub Enterprise Server (whose API is elsewhere).
        let provider = revision_summary
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|v| v["ProviderType"].as_str().map(str::to_owned));
        if provider.is_some_and(|p| p != "GitHub") {
            return None;
        }
        let mut repo = None;
        let mut sha = None;
        let mut reference = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "FullRepositoryId" => repo = Some(value.into_owned()),
                "Commit" => sha = Some(value.into_owned()),
                "referenceType" => reference = Some(value.into_owned()),
                _ => {}
            }
        }
        if reference.is_some_and(|r| !r.eq_ignore_ascii_case("COMMIT")) {
            return None;
        }
        (repo?, sha.unwrap_or_default())
    } else {
        return None;
    };
    if !is_repo(&repo) {
        return None;
    }
    let sha = revision_id
        .filter(|id| is_sha(id))
        .map(str::to_owned)
        .or_else(|| is_sha(&url_sha).then_some(url_sha))?;
    Some(GitHubCommit {
        repo,
        sha: sha.to_ascii_lowercase(),
    })
}

/// `owner/name` as GitHub spells them.
fn is_repo(repo: &str) -> bool {
    let Some((owner, name)) = repo.split_once('/') else {
        return false;
    };
    (1..=100).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_sha(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The execution in the console.
pub fn execution_url(e: &ExecutionEvent) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{name}/executions/{id}/timeline?region={region}",
        region = e.region,
        name = e.pipeline,
        id = e.execution_id,
    )
}

/// What `GetPipelineExecution` says of the execution: its GitHub commit (if
/// any) and its status summary.
struct Execution {
    commit: Option<GitHubCommit>,
    status_summary: Option<String>,
}

async fn execution(deps: &Deps, e: &ExecutionEvent) -> Result<Execution, HandlerError> {
    let out = deps
        .codepipeline
        .get_pipeline_execution()
        .pipeline_name(&e.pipeline)
        .pipeline_execution_id(&e.execution_id)
        .send()
        .await
        .map_err(|err| HandlerError::Pipeline {
            what: format!("GetPipelineExecution {} {}", e.pipeline, e.execution_id),
            reason: describe_sdk_error(&err),
        })?;
    let execution = out.pipeline_execution();
    let commit = execution.and_then(|x| {
        x.artifact_revisions()
            .iter()
            .find_map(|r| github_commit(r.revision_url()?, r.revision_id(), r.revision_summary()))
    });
    let status_summary = execution
        .and_then(|x| x.status_summary())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(Execution {
        commit,
        status_summary,
    })
}

pub async fn execution_changed(
    deps: &Deps,
    holder: &Holder,
    e: &ExecutionEvent,
) -> Result<Report, HandlerError> {
    let Some((state, description)) = e.state.status() else {
        return Ok(Report {
            unchanged: Some("stopping; the state it ends in is reported"),
            ..Report::default()
        });
    };
    let final_claim = Effect::Pipeline {
        execution_id: &e.execution_id,
        state: None,
    };
    let claim = if e.state.is_final() {
        final_claim
    } else {
        Effect::Pipeline {
            execution_id: &e.execution_id,
            state: Some(e.state.as_str()),
        }
    };
    // A failed stage retried: the execution is running again, and its new
    // outcome must be able to replace the failure.
    if e.state == ExecutionState::Resumed {
        deps.reporter.records.forget(&final_claim).await?;
    }
    if !e.state.is_final() && deps.reporter.records.claimed(&final_claim).await? {
        return Ok(Report {
            unchanged: Some("already finished; never back to pending"),
            ..Report::default()
        });
    }
    let execution = execution(deps, e).await?;
    let Some(commit) = execution.commit else {
        return Ok(Report {
            unchanged: Some("pipeline source is not a GitHub commit"),
            ..Report::default()
        });
    };
    let description = match (&execution.status_summary, e.state) {
        (Some(summary), ExecutionState::Failed) => {
            statuses::description(&format!("{description}: {summary}"))
        }
        _ => description.to_owned(),
    };
    holder
        .deadline
        .require(deps.reporter.status_budget(), "post a pipeline status")?;
    let lease = match deps.reporter.records.acquire(&claim, holder).await? {
        Acquired::Won(lease) => lease,
        Acquired::Done => {
            return Ok(Report {
                unchanged: Some("already posted"),
                ..Report::default()
            });
        }
        Acquired::Busy { holder: other, .. } => {
            return Err(HandlerError::Busy {
                effect: "the pipeline status",
                holder: other,
            });
        }
    };
    let status = CommitStatus {
        state,
        context: format!("gantry/pipeline/{}", e.pipeline),
        description,
        target_url: Some(execution_url(e)),
    };
    if let Err(err) = post_status(&deps.reporter, None, &commit.repo, &commit.sha, &status).await {
        deps.reporter.records.release(lease).await?;
        return Err(err);
    }
    deps.reporter.records.complete(lease, holder).await?;
    tracing::info!(
        pipeline = %e.pipeline,
        execution_id = %e.execution_id,
        repo = %commit.repo,
        commit = %commit.sha,
        state = state.as_str(),
        context = %status.context,
        outcome = "status",
        "pipeline status posted"
    );
    Ok(Report {
        posted: Some(state),
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_core::github::statuses::StatusState;
    use serde_json::json;

    const SHA: &str = "da7add70427515f20f736525be1b92bf23ff6b6f";

    fn commit(repo: &str) -> Option<GitHubCommit> {
        Some(GitHubCommit {
            repo: repo.into(),
            sha: SHA.into(),
        })
    }

    #[test]
    fn a_connection_revision_url_names_the_repository_and_commit() {
        let url = format!(
            "https://us-west-2.console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn=arn:aws:codestar-connections:us-west-2:123456789012:connection/4dde5c82-51d6-4ea9-918e-03aed6972ff3&referenceType=COMMIT&FullRepositoryId=aws/dummy-repository&Commit={SHA}"
        );
        let summary = r#"{"ProviderType":"GitHub","CommitMessage":"Updated some files"}"#;
        assert_eq!(
            github_commit(&url, Some(SHA), Some(summary)),
            commit("aws/dummy-repository")
        );
        // Encoded, as a browser or another client may write it; no summary.
        let encoded = format!(
            "https://console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn=arn%3Aaws%3Acodeconnections%3Aeu-west-1%3A123456789012%3Aconnection%2Fabc&referenceType=COMMIT&FullRepositoryId=Octo-Org%2Fwidgets.rs&Commit={}",
            SHA.to_ascii_uppercase()
        );
        assert_eq!(
            github_commit(&encoded, None, None),
            commit("Octo-Org/widgets.rs")
        );
        // A plain-text summary (not JSON) says nothing about the provider.
        assert_eq!(
            github_commit(&url, None, Some("Updated some files")),
            commit("aws/dummy-repository")
        );
    }

    #[test]
    fn a_connection_to_another_provider_is_not_github() {
        let url = format!(
            "https://ap-southeast-2.console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn=arn:aws:codestar-connections:ap-southeast-2:000000000000:connection/0def&referenceType=COMMIT&FullRepositoryId=project/repository&Commit={SHA}"
        );
        for provider in ["Bitbucket", "GitLab", "GitHubEnterpriseServer"] {
            let summary = format!(r#"{{"ProviderType":"{provider}","CommitMessage":"x"}}"#);
            assert_eq!(
                github_commit(&url, Some(SHA), Some(&summary)),
                None,
                "{provider}"
            );
        }
        let branch = url.replace("referenceType=COMMIT", "referenceType=BRANCH");
        assert_eq!(github_commit(&branch, None, None), None);
    }

    #[test]
    fn an_oauth_revision_url_names_the_repository_and_commit() {
        let url = format!("https://github.com/hmrc/telemetry-terraform/commit/{SHA}");
        assert_eq!(
            github_commit(&url, Some(SHA), Some("TEL-3481 create a thing")),
            commit("hmrc/telemetry-terraform")
        );
        // A shortened commit in the URL: the revision id is the full one.
        let short = "https://github.com/my-org/my-app-repo/commit/da7add70";
        assert_eq!(
            github_commit(short, Some(SHA), None),
            commit("my-org/my-app-repo")
        );
        assert_eq!(github_commit(short, None, None), None);
    }

    #[test]
    fn other_sources_are_not_github_commits() {
        for url in [
            "https://s3.console.aws.amazon.com/s3/buckets/my-bucket/source.zip?region=us-east-1",
            "https://us-east-1.console.aws.amazon.com/codesuite/codecommit/repositories/repo/commit/da7add70427515f20f736525be1b92bf23ff6b6f?region=us-east-1",
            "https://gitlab.com/group/project/-/commit/da7add70427515f20f736525be1b92bf23ff6b6f",
            "http://github.com/a/b/commit/da7add70427515f20f736525be1b92bf23ff6b6f",
            "https://github.com/a/b/tree/da7add70427515f20f736525be1b92bf23ff6b6f",
            "https://github.com/a/b/c/commit/da7add70427515f20f736525be1b92bf23ff6b6f",
            "https://github.com/a%2F..%2Fx/b/commit/da7add70427515f20f736525be1b92bf23ff6b6f",
            "https://evil.example/codesuite/settings/connections/redirect?FullRepositoryId=a/b&Commit=da7add70427515f20f736525be1b92bf23ff6b6f",
            "not a url",
            "",
        ] {
            assert_eq!(github_commit(url, Some(SHA), None), None, "{url}");
        }
    }

    fn event(detail: serde_json::Value) -> serde_json::Value {
        json!({
            "source": "aws.codepipeline",
            "detail-type": "CodePipeline Pipeline Execution State Change",
            "region": "eu-central-1",
            "detail": detail,
        })
    }

    #[test]
    fn events_are_read_and_bad_ones_refused_with_a_reason() {
        let e = parse_event(&event(json!({
            "pipeline": "my-pipeline_1",
            "execution-id": "12345678-1234-5678-abcd-12345678abcd",
            "state": "SUPERSEDED",
            "version": 1,
        })))
        .expect("an execution event");
        assert_eq!(e.state, ExecutionState::Superseded);
        assert_eq!(
            execution_url(&e),
            "https://eu-central-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/my-pipeline_1/executions/12345678-1234-5678-abcd-12345678abcd/timeline?region=eu-central-1"
        );
        let cases = [
            (json!({"execution-id": "x", "state": "STARTED"}), "pipeline"),
            (json!({"pipeline": "p", "state": "STARTED"}), "execution-id"),
            (json!({"pipeline": "p", "execution-id": "x"}), "state"),
            (
                json!({"pipeline": "p", "execution-id": "x", "state": "PAUSED"}),
                "PAUSED",
            ),
            (
                json!({"pipeline": "p/../q", "execution-id": "x", "state": "STARTED"}),
                "not a CodePipeline name",
            ),
            (
                json!({"pipeline": "p", "execution-id": "x/y", "state": "STARTED"}),
                "execution id",
            ),
        ];
        for (detail, expected) in cases {
            match parse_event(&event(detail.clone())) {
                Err(HandlerError::Event(m)) => assert!(m.contains(expected), "{m}"),
                other => panic!("{detail}: {other:?}"),
            }
        }
        let mut no_region =
            event(json!({"pipeline": "p", "execution-id": "x", "state": "STARTED"}));
        no_region.as_object_mut().map(|o| o.remove("region"));
        assert!(
            matches!(parse_event(&no_region), Err(HandlerError::Event(m)) if m.contains("region"))
        );
    }

    #[test]
    fn each_state_has_its_status() {
        use ExecutionState::*;
        let table = [
            (Started, Some(StatusState::Pending), false),
            (Resumed, Some(StatusState::Pending), false),
            (Succeeded, Some(StatusState::Success), true),
            (Failed, Some(StatusState::Failure), true),
            (Stopping, None, false),
            (Stopped, Some(StatusState::Error), true),
            (Superseded, Some(StatusState::Error), true),
            (Canceled, Some(StatusState::Error), true),
        ];
        for (state, status, is_final) in table {
            assert_eq!(state.status().map(|s| s.0), status, "{state:?}");
            assert_eq!(state.is_final(), is_final, "{state:?}");
            assert_eq!(ExecutionState::parse(state.as_str()), Some(state));
        }
    }
}
