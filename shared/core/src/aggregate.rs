//! The aggregate status of a repository's named builds (`builds:`): one
//! context (`gantry/all` by default) that is `pending` until every member
//! of the commit's request has a final status, then `success` only if
//! every one succeeded or was skipped by its path filters, else `failure`
//! naming the members that did not. Teams make only it a required check.

use serde::{Deserialize, Serialize};

use crate::github::statuses::StatusState;
use crate::records::hex16;

/// The last status one member put on the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState {
    pub state: StatusState,
    /// Will not change without a new request (a Re-run).
    pub is_final: bool,
    pub correlation_id: String,
}

/// What the aggregate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    pub state: StatusState,
    pub description: String,
}

/// Where a (repository, commit, aggregate context)'s members and the
/// aggregate last posted are kept.
pub fn prefix(repo: &str, sha: &str, context: &str) -> String {
    format!(
        "aggregates/{}/",
        hex16(&format!(
            "{}@{}#{context}",
            repo.to_ascii_lowercase(),
            sha.to_ascii_lowercase()
        ))
    )
}

pub fn member_key(prefix: &str, member: &str) -> String {
    format!("{prefix}members/{member}.json")
}

pub fn posted_key(prefix: &str) -> String {
    format!("{prefix}posted.json")
}

/// The aggregate of `members` (each named member of the request, with its
/// last state if it has one).
pub fn aggregate(members: &[(String, Option<MemberState>)]) -> Aggregate {
    let total = members.len();
    let finished = members
        .iter()
        .filter(|(_, s)| s.as_ref().is_some_and(|s| s.is_final))
        .count();
    if finished < total {
        let waiting: Vec<&str> = members
            .iter()
            .filter(|(_, s)| !s.as_ref().is_some_and(|s| s.is_final))
            .map(|(n, _)| n.as_str())
            .collect();
        return Aggregate {
            state: StatusState::Pending,
            description: format!(
                "{finished} of {total} builds finished; waiting for {}",
                waiting.join(", ")
            ),
        };
    }
    let failed: Vec<&str> = members
        .iter()
        .filter(|(_, s)| s.as_ref().is_some_and(|s| s.state != StatusState::Success))
        .map(|(n, _)| n.as_str())
        .collect();
    if failed.is_empty() {
        Aggregate {
            state: StatusState::Success,
            description: format!("all {total} builds passed or were skipped"),
        }
    } else {
        Aggregate {
            state: StatusState::Failure,
            description: format!("{} of {total} failed: {}", failed.len(), failed.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(state: StatusState, is_final: bool) -> Option<MemberState> {
        Some(MemberState {
            state,
            is_final,
            correlation_id: "c".into(),
        })
    }

    #[test]
    fn pending_until_every_member_is_final_then_failure_names_the_failed() {
        let mut members = vec![
            ("lint".to_owned(), state(StatusState::Success, true)),
            ("test".to_owned(), state(StatusState::Pending, false)),
            ("docs".to_owned(), None),
        ];
        let a = aggregate(&members);
        assert_eq!(a.state, StatusState::Pending);
        assert!(a.description.contains("1 of 3"), "{}", a.description);
        assert!(a.description.contains("test, docs"), "{}", a.description);
        members[1].1 = state(StatusState::Failure, true);
        members[2].1 = state(StatusState::Success, true);
        let a = aggregate(&members);
        assert_eq!(a.state, StatusState::Failure);
        assert_eq!(a.description, "1 of 3 failed: test");
        members[1].1 = state(StatusState::Success, true);
        assert_eq!(aggregate(&members).state, StatusState::Success);
        // An errored member (superseded, rejected) fails the whole too.
        members[0].1 = state(StatusState::Error, true);
        assert_eq!(aggregate(&members).description, "1 of 3 failed: lint");
    }

    #[test]
    fn keys_are_per_repository_commit_and_context() {
        let a = prefix("Octo/W", "ABC", "gantry/all");
        assert_eq!(a, prefix("octo/w", "abc", "gantry/all"));
        assert_ne!(a, prefix("octo/w", "abd", "gantry/all"));
        assert_ne!(a, prefix("octo/w", "abc", "ci/all"));
        assert!(member_key(&a, "lint").starts_with(&a));
    }
}
