//! Keeping the aggregate status of a commit's named builds up to date
//! (`gantry_core::aggregate` decides what it says).
//!
//! Each member's moment records the member's state, then recomputes the
//! aggregate from every member's record. What was last posted is kept
//! beside them and changed only with a write conditional on what was read,
//! so of two members finishing at once, each computes from the other's
//! record or loses the write and computes again. Two posts to GitHub can
//! still cross on the way: after posting, the poster reads back what is
//! recorded and posts again if it changed meanwhile, so the status GitHub
//! keeps last is the one recorded last.

use gantry_core::aggregate::{self, Aggregate, MemberState};
use gantry_core::badge::{self as badges, BadgeState};
use gantry_core::config::RepositoryRules;
use gantry_core::events::BuildSource;
use gantry_core::github::statuses::{CommitStatus, StatusState};

use crate::report::{ReportError, Reporter, post_status};

/// How often a poster re-reads and re-posts before leaving the rest to
/// the next member's moment.
const ROUNDS: usize = 4;

/// Records `state` as member `source.member`'s latest and brings the
/// aggregate context of `rules` up to date. Does nothing for a build that
/// is not a named build.
pub async fn member_moment(
    reporter: &Reporter,
    rules: &RepositoryRules,
    source: &BuildSource,
    correlation_id: &str,
    state: StatusState,
    is_final: bool,
) -> Result<Option<Aggregate>, ReportError> {
    let (Some(member), Some(context)) = (&source.member, rules.aggregate_context()) else {
        return Ok(None);
    };
    let context = context.as_str();
    let repo = source.repository.full_name.as_str();
    let sha = source.commit_sha.as_str();
    let prefix = aggregate::prefix(repo, sha, context);
    reporter
        .records
        .put_json(
            &aggregate::member_key(&prefix, &member.name),
            &MemberState {
                state,
                is_final,
                correlation_id: correlation_id.to_owned(),
            },
        )
        .await?;
    let names: Vec<String> = if member.of.is_empty() {
        vec![member.name.clone()]
    } else {
        member.of.clone()
    };
    let posted_key = aggregate::posted_key(&prefix);
    let mut last_posted: Option<Aggregate> = None;
    for _ in 0..ROUNDS {
        let mut members = Vec::with_capacity(names.len());
        for name in &names {
            let state: Option<MemberState> = reporter
                .records
                .get_json(&aggregate::member_key(&prefix, name))
                .await?;
            members.push((name.clone(), state));
        }
        let want = aggregate::aggregate(&members);
        let recorded = reporter
            .records
            .get_json_tagged::<Aggregate>(&posted_key)
            .await?;
        let to_post = match recorded {
            // Recorded already: post it only if this invocation posted
            // something else since (its post may have landed after theirs).
            Some((current, _)) if current == want => {
                if last_posted.as_ref().is_none_or(|p| *p == current) {
                    return Ok(Some(current));
                }
                current
            }
            Some((_, etag)) => {
                if !reporter
                    .records
                    .replace_json(&posted_key, &want, &etag)
                    .await?
                {
                    continue;
                }
                want
            }
            None => {
                if !reporter.records.create_json(&posted_key, &want).await? {
                    continue;
                }
                want
            }
        };
        // Moved on since (another member's end)? Then theirs is the one
        // to post: read and decide again rather than post a stale state.
        let now = reporter.records.get_json::<Aggregate>(&posted_key).await?;
        if now.as_ref() != Some(&to_post) {
            continue;
        }
        post_status(
            reporter,
            source.installation_id,
            repo,
            sha,
            &CommitStatus {
                state: to_post.state,
                context: context.to_owned(),
                description: to_post.description.clone(),
                // Not one build's page: the whole has none.
                target_url: None,
            },
        )
        .await?;
        tracing::info!(
            correlation_id,
            repo,
            commit = sha,
            context,
            state = to_post.state.as_str(),
            description = %to_post.description,
            outcome = "aggregate",
            "aggregate status posted"
        );
        // A branch's badge says what its commit's builds came to.
        let badge_state = match to_post.state {
            StatusState::Success => Some(BadgeState::Passing),
            StatusState::Failure => Some(BadgeState::Failing),
            StatusState::Error => Some(BadgeState::Error),
            StatusState::Pending => None,
        };
        if let Some(state) = badge_state
            && let Some(b) = gantry_core::report::badge(Some(rules), source, state)
        {
            reporter
                .records
                .put_badge(&b.key, badges::svg(&b.branch, b.state))
                .await?;
        }
        last_posted = Some(to_post);
    }
    Ok(last_posted)
}
