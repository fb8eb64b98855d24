//! What Gantry remembers about builds, as data: the build record (written
//! when a build starts, completed when it ends), the claims of effects
//! carried out once (a status posted, a message sent) and the single place
//! their keys are spelled, the holds of forks' commits, the last result of
//! each branch or pull request. `gantry_aws::records` keeps them in S3.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::{BuildSource, SecretRef, SupersededBy};
use crate::ids::{BuildArn, BuildId, CommitSha, CorrelationId};

/// One phase of a finished build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
}

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// CodeBuild's `buildStatus`: SUCCEEDED, FAILED, FAULT, STOPPED, TIMED_OUT.
    pub status: crate::codebuild_events::BuildStatus,
    pub finished_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTiming>,
    /// The pushed image (`IMAGE_URI`, exported by buildspecs/docker.yml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
    /// How much of the Docker build came from the layer cache
    /// (`DOCKER_CACHE`, exported by buildspecs/docker.yml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_cache: Option<crate::exported::LayerCache>,
    /// The build's test reports (a buildspec's `reports:`), summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<crate::test_reports::TestResults>,
    /// Where CodeBuild uploaded the buildspec's `artifacts:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactsPlace>,
    /// Where the log is, as CodeBuild's final event names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<crate::page::log::LogPlace>,
}

/// `builds/<project>/<uuid>.json`: one build, from start to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub v: u32,
    pub build_id: BuildId,
    pub build_arn: BuildArn,
    pub project: String,
    pub correlation_id: CorrelationId,
    pub source: BuildSource,
    pub build_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_url: Option<String>,
    pub trusted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Finished>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<SupersededBy>,
    /// The validated buildspec's digest, as the build ran it (records
    /// written before it was kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec_digest: Option<String>,
    /// Where the buildspec was read (the build page links to the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildspec_location: Option<crate::events::BuildspecLocation>,
}

/// The record's key for a build.
pub fn build_key(build_id: &BuildId) -> String {
    let (project, uuid) = build_id.parts();
    let project = project.unwrap_or("unknown");
    format!("builds/{project}/{uuid}.json")
}

/// `artifacts/<project>`: the path start-build gives CodeBuild for a
/// build's artifacts; CodeBuild adds the build's id (namespace BUILD_ID).
pub fn artifacts_path(project: &str) -> String {
    format!("{ARTIFACTS_PREFIX}{project}")
}

/// Where builds' artifacts are in the bucket; the build roles may write
/// their own project's part only.
pub const ARTIFACTS_PREFIX: &str = "artifacts/";

/// Where CodeBuild put a build's artifacts: `s3://<bucket>/<prefix>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactsPlace {
    pub bucket: String,
    /// Ends with `/`.
    pub prefix: String,
}

impl ArtifactsPlace {
    /// From a build's `artifacts.location` (`arn:aws:s3:::bucket/key`), if
    /// it is one Gantry gave: under [`ARTIFACTS_PREFIX`], no `..`.
    pub fn from_location(location: &str) -> Option<ArtifactsPlace> {
        let rest = location.strip_prefix("arn:")?;
        let (_partition, rest) = rest.split_once(':')?;
        let path = rest.strip_prefix("s3:::")?;
        let (bucket, key) = path.split_once('/')?;
        let key = key.trim_end_matches('/');
        if bucket.is_empty()
            || !key.starts_with(ARTIFACTS_PREFIX)
            || key.len() <= ARTIFACTS_PREFIX.len()
            || key.split('/').any(|part| part.is_empty() || part == "..")
        {
            return None;
        }
        Some(ArtifactsPlace {
            bucket: bucket.to_owned(),
            prefix: format!("{key}/"),
        })
    }
}

/// `history/<repo hash>/`: where a repository's builds are listed.
pub fn history_prefix(repo: &str) -> String {
    format!("history/{}/", hex16(&repo.to_ascii_lowercase()))
}

/// `history/<repo hash>/<inverted start>/<project>/<uuid>`: an empty
/// object per build, so that listing the prefix gives the newest first
/// (the start time is written as `u64::MAX - ms`, zero-padded).
pub fn history_key(repo: &str, started_at_ms: u64, build_id: &BuildId) -> String {
    let (project, uuid) = build_id.parts();
    format!(
        "{}{:020}/{}/{uuid}",
        history_prefix(repo),
        u64::MAX - started_at_ms,
        project.unwrap_or("unknown")
    )
}

/// The build a history key names.
pub fn history_build(key: &str) -> Option<BuildId> {
    let mut parts = key.rsplitn(3, '/');
    let uuid = parts.next()?;
    let project = parts.next()?;
    (!uuid.is_empty() && !project.is_empty()).then(|| BuildId::new(format!("{project}:{uuid}")))
}

pub fn hex16(text: &str) -> String {
    crate::hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// How long after a holder's deadline its claim may be taken over: room
/// for the clocks of two Lambda hosts to disagree.
pub const TAKEOVER_GRACE_MS: u64 = 5_000;

/// What a claim's object says. Objects written before claims had a
/// deadline (plain text, or other JSON) read as done: their effect was
/// carried out or released by the code that wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Mark {
    /// Being carried out by `holder` until `deadline_ms`.
    Claimed {
        holder: String,
        deadline_ms: u64,
    },
    Done {
        holder: String,
    },
}

impl Mark {
    pub fn read(text: &str) -> Mark {
        serde_json::from_str(text).unwrap_or_else(|_| Mark::Done {
            holder: String::new(),
        })
    }
}

/// Who claims, and until when: the invocation's id (the correlation id
/// serves) and its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub id: String,
    pub deadline: crate::deadline::Deadline,
}

/// An effect carried out once: the one place its claim's key is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect<'a> {
    /// A commit status about `subject` (a build id, or the correlation id
    /// when no build started) in one state; `state: None` is the final one,
    /// posted once whatever it is.
    Status {
        subject: &'a str,
        state: Option<crate::github::statuses::StatusState>,
    },
    /// One chat route's message about `subject`'s outcome.
    Notify {
        subject: &'a str,
        route: usize,
        provider: crate::notify::Provider,
        url_parameter: &'a str,
    },
    /// A CodePipeline execution's status in one state; `None` is final.
    Pipeline {
        execution_id: &'a str,
        state: Option<&'a str>,
    },
    /// The check run of a delivery's build of a project, created once.
    CheckRun {
        correlation_id: &'a str,
        project: &'a str,
    },
    /// A schedule's firing in one minute (seconds since the epoch).
    Schedule { schedule: &'a str, minute: i64 },
    /// Something other than a skip posted on this commit and context: a
    /// skip's `success` must never replace it.
    BuildOnCommit {
        repo: &'a str,
        sha: &'a str,
        context: &'a str,
    },
}

impl Effect<'_> {
    /// `effects/<hash>`; the hashed names are those claims have always had,
    /// so claims written before this type existed are still found.
    pub fn key(&self) -> String {
        let name = match self {
            Effect::Status {
                subject,
                state: None,
            } => format!("status/{subject}/final"),
            Effect::Status {
                subject,
                state: Some(state),
            } => format!("status/{subject}/{}", state.as_str()),
            Effect::Notify {
                subject,
                route,
                provider,
                url_parameter,
            } => format!("notify/{subject}/{route}/{provider}/{url_parameter}"),
            Effect::Pipeline {
                execution_id,
                state: None,
            } => format!("pipeline/{execution_id}/final"),
            Effect::Pipeline {
                execution_id,
                state: Some(state),
            } => format!("pipeline/{execution_id}/{state}"),
            Effect::CheckRun {
                correlation_id,
                project,
            } => format!("check-run/{correlation_id}/{project}"),
            Effect::Schedule { schedule, minute } => format!("schedule/{schedule}/{minute}"),
            Effect::BuildOnCommit { repo, sha, context } => format!(
                "commit/{}/{}/{context}",
                repo.to_ascii_lowercase(),
                sha.to_ascii_lowercase()
            ),
        };
        format!("effects/{}", hex16(&name))
    }
}

/// `checks/<hash>.json`: the check run of one delivery's build of one
/// project, and what it was last set to. Moments are reported against it:
/// it is created once (the [`Effect::CheckRun`] claim), then updated, never
/// backwards (see `github::checks::CheckState::rank`). A re-run reads the
/// build's source from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRunRecord {
    /// GitHub's id of the run.
    pub id: u64,
    pub name: String,
    pub correlation_id: CorrelationId,
    pub project: String,
    pub source: BuildSource,
    /// The build, once one started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<BuildId>,
    pub state: crate::github::checks::CheckState,
    /// The claim key of the moment last set: a retry of that same moment
    /// sets it again (its earlier attempt may have stopped short of GitHub).
    pub moment: String,
}

/// Where the check run of `correlation_id`'s build of `project` is kept.
pub fn check_run_key(correlation_id: &str, project: &str) -> String {
    format!(
        "checks/{}.json",
        hex16(&format!("{correlation_id}/{project}"))
    )
}

/// Who put the last status on a (commit, context), as far as Gantry knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMark {
    /// A skip, for this subject (its correlation id).
    Skip { subject: String },
    /// A build, a rejection, a hold: anything that is not a skip.
    Build { subject: String },
}

/// `holds/<hash>.json`: a fork's commit held for a maintainer's approval.
/// An approval label builds a commit only if it was held: a push after the
/// hold is a new commit, held anew, and needs its own approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The delivery whose `Build Held` held it.
    pub correlation_id: CorrelationId,
    pub commit_sha: CommitSha,
    pub held_at_ms: u64,
}

pub fn hold_key(repo: &str, pull_request: u64, sha: &str) -> String {
    format!(
        "holds/{}.json",
        hex16(&format!(
            "{}#{pull_request}@{}",
            repo.to_ascii_lowercase(),
            sha.to_ascii_lowercase()
        ))
    )
}

/// The last result of one branch or pull request, for "fixed" and
/// "changes" notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResult {
    /// Records written before this was typed hold the headline word
    /// (`passed`, `failed`, …), which reads as the same result.
    pub result: crate::notify::BuildResult,
    pub build_id: BuildId,
    pub commit_sha: CommitSha,
}

#[cfg(test)]
mod tests {

    #[test]
    fn artifacts_are_read_where_gantry_put_them_only() {
        assert_eq!(
            ArtifactsPlace::from_location(
                "arn:aws:s3:::gantry-bucket/artifacts/gantry-build/7f1c2d3e-0000-4000-8000-000000000001"
            ),
            Some(ArtifactsPlace {
                bucket: "gantry-bucket".into(),
                prefix: "artifacts/gantry-build/7f1c2d3e-0000-4000-8000-000000000001/".into(),
            })
        );
        assert!(ArtifactsPlace::from_location("arn:aws-cn:s3:::b/artifacts/p/u/").is_some());
        for wrong in [
            "",
            "s3://b/artifacts/p/u",
            "arn:aws:s3:::b/builds/p/u",
            "arn:aws:s3:::b/artifacts/",
            "arn:aws:s3:::b/artifacts/p/../../builds",
            "arn:aws:s3:::/artifacts/p/u",
        ] {
            assert_eq!(ArtifactsPlace::from_location(wrong), None, "{wrong}");
        }
        assert_eq!(artifacts_path("gantry-build"), "artifacts/gantry-build");
    }

    use super::*;

    #[test]
    fn a_repository_s_history_lists_its_newest_build_first() {
        let id = |u: &str| BuildId::new(format!("gantry-trusted:{u}"));
        let older = history_key("Octo-Org/Widgets", 1_000, &id("aa"));
        let newer = history_key("octo-org/widgets", 2_000, &id("bb"));
        assert!(newer < older);
        assert!(newer.starts_with(&history_prefix("OCTO-ORG/widgets")));
        assert_eq!(history_build(&older), Some(id("aa")));
    }

    #[test]
    fn build_keys_come_from_the_id_or_the_arn() {
        assert_eq!(
            build_key(&BuildId::new("gantry-build:7f1c")),
            "builds/gantry-build/7f1c.json"
        );
        assert_eq!(
            build_key(
                &BuildArn::new("arn:aws:codebuild:eu-west-1:123456789012:build/gantry-build:7f1c")
                    .id()
            ),
            "builds/gantry-build/7f1c.json"
        );
    }

    #[test]
    fn state_written_before_it_was_typed_reads_the_same() {
        use crate::notify::{BuildResult, Provider};
        // A last result as the code before typed results wrote it.
        let old: LastResult = serde_json::from_str(
            r#"{"result":"passed","build_id":"gantry-build:7f1c","commit_sha":"9f2c1e4"}"#,
        )
        .expect("an old record reads");
        assert_eq!(old.result, BuildResult::Succeeded);
        for (word, result) in [
            ("failed", BuildResult::Failed),
            ("fixed", BuildResult::Fixed),
            ("errored", BuildResult::Errored),
            ("rejected", BuildResult::Rejected),
            ("stopped", BuildResult::Stopped),
        ] {
            let text = format!(r#"{{"result":"{word}","build_id":"b","commit_sha":"c"}}"#);
            let read: LastResult = serde_json::from_str(&text).expect("reads");
            assert_eq!(read.result, result, "{word}");
        }
        // And a typed one reads back as written.
        let new = LastResult {
            result: BuildResult::Succeeded,
            ..old.clone()
        };
        let text = serde_json::to_string(&new).expect("JSON");
        assert_eq!(serde_json::from_str::<LastResult>(&text).ok(), Some(new));
        // A message's claim keeps the key it had when providers were text.
        let typed = Effect::Notify {
            subject: "gantry-build:7f1c",
            route: 0,
            provider: Provider::GoogleChat,
            url_parameter: "/gantry/notify/chat",
        };
        assert_eq!(
            typed.key(),
            format!(
                "effects/{}",
                hex16("notify/gantry-build:7f1c/0/google-chat//gantry/notify/chat")
            )
        );
    }
}
