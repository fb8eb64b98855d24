//! From GitHub's payloads to Gantry's [`BuildSource`]: the few fields a build
//! needs, every one capped so the event stays small whatever GitHub sent.

use std::collections::BTreeSet;

use crate::events::{
    BuildSource, ChangedPaths, HeadCommit, PullRequestRef, RepositoryRef, Trigger, cap, limits,
};
use crate::github::payload::{PayloadError, PullRequestEvent, PushEvent, Repository};

/// What a delivery amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalised {
    /// A commit that may build; the trigger rules decide.
    Build(Box<BuildSource>),
    /// Nothing to build (a deletion, an action that does not build), and why.
    Ignore(String),
}

/// GitHub lists at most this many commits in a push.
const GITHUB_MAX_COMMITS: usize = 2048;
/// GitHub caps each commit's `added`/`removed`/`modified` lists (3000 in
/// the REST API; larger on some servers), so a list this long may be cut.
const GITHUB_MAX_FILES_PER_LIST: usize = 3000;

/// The actions that may build. `labeled` builds only when the label
/// approves a fork's pull request; the webhook decides that.
const PULL_REQUEST_ACTIONS: &[&str] = &[
    "opened",
    "reopened",
    "synchronize",
    "ready_for_review",
    "labeled",
];

fn field(s: &str) -> String {
    cap(s, limits::FIELD_BYTES)
}

fn check_sha(event: &'static str, path: &str, sha: &str) -> Result<(), PayloadError> {
    let ok = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(PayloadError {
            event,
            path: path.to_owned(),
            message: "expected a 40 or 64 digit hexadecimal commit SHA".into(),
        })
    }
}

fn repository(repo: &Repository<'_>) -> RepositoryRef {
    let owner = repo.owner.handle();
    let owner = if owner.is_empty() {
        repo.full_name.split('/').next().unwrap_or_default()
    } else {
        owner
    };
    RepositoryRef {
        full_name: field(&repo.full_name).into(),
        owner: field(owner),
        name: field(&repo.name),
        clone_url: field(&repo.clone_url),
        html_url: field(&repo.html_url),
        default_branch: repo.default_branch.as_deref().map(field),
        private: repo.private,
    }
}

/// A `push` delivery.
pub fn normalise_push(push: &PushEvent<'_>) -> Result<Normalised, PayloadError> {
    let git_ref: &str = &push.git_ref;
    let (branch, tag) = if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        (Some(b), None)
    } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        (None, Some(t))
    } else {
        return Ok(Normalised::Ignore(format!(
            "push to `{}` is neither a branch nor a tag",
            cap(git_ref, 200)
        )));
    };
    if push.deleted {
        let what = if branch.is_some() { "branch" } else { "tag" };
        let name = branch.or(tag).unwrap_or_default();
        return Ok(Normalised::Ignore(format!(
            "{what} deletion: `{}`",
            cap(name, 200)
        )));
    }
    check_sha("push", "after", &push.after)?;

    let mut changed = changed_paths(push);
    // A new branch or a force push: the commit list does not describe the
    // change against what was there, so path rules cannot be trusted with it.
    if push.created || push.forced {
        changed.truncated = true;
    }
    let head_commit = push.head_commit.as_ref().map(|c| HeadCommit {
        message: cap(&c.message, limits::MESSAGE_BYTES),
        url: c.url.as_deref().map(field),
    });
    Ok(Normalised::Build(Box::new(BuildSource {
        trigger: Trigger::Push,
        repository: repository(&push.repository),
        commit_sha: push.after.to_ascii_lowercase().into(),
        git_ref: field(git_ref),
        branch: branch.map(field),
        tag: tag.map(field),
        pull_request: None,
        fork: false,
        pusher: push.pusher.as_ref().map(|p| field(&p.name)),
        sender: push.sender.as_ref().map(|s| field(s.handle())),
        head_commit,
        changed_paths: changed,
        compare_url: push.compare.as_deref().map(field),
        signed_at_ms: push.repository.pushed_at.0.unwrap_or_default(),
        received_at_ms: 0,
        installation_id: push.installation.as_ref().map(|i| i.id),
        attempt: 1,
        member: None,
        run: None,
        compute: Default::default(),
    })))
}

fn changed_paths(push: &PushEvent<'_>) -> ChangedPaths {
    let mut truncated = push.commits.len() >= GITHUB_MAX_COMMITS;
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut bytes = 0usize;
    'commits: for commit in &push.commits {
        for list in [&commit.added, &commit.removed, &commit.modified] {
            if list.len() >= GITHUB_MAX_FILES_PER_LIST {
                truncated = true;
            }
            for path in list {
                let path: &str = path;
                if seen.contains(path) {
                    continue;
                }
                if seen.len() >= limits::CHANGED_PATHS
                    || bytes + path.len() > limits::CHANGED_PATHS_BYTES
                {
                    truncated = true;
                    break 'commits;
                }
                bytes += path.len();
                seen.insert(path);
            }
        }
    }
    ChangedPaths {
        paths: seen.into_iter().map(str::to_owned).collect(),
        truncated,
    }
}

/// A `pull_request` delivery.
pub fn normalise_pull_request(event: &PullRequestEvent<'_>) -> Result<Normalised, PayloadError> {
    let action: &str = &event.action;
    if !PULL_REQUEST_ACTIONS.contains(&action) {
        return Ok(Normalised::Ignore(format!(
            "pull_request action `{}` does not build",
            cap(action, 100)
        )));
    }
    let pr = &event.pull_request;
    check_sha("pull_request", "pull_request.head.sha", &pr.head.sha)?;
    check_sha("pull_request", "pull_request.base.sha", &pr.base.sha)?;
    let base_repo: &str = &event.repository.full_name;
    let head_repository = pr.head.repo.as_ref().map(|r| field(&r.full_name));
    // A deleted head repository can only have been a fork.
    let fork = head_repository
        .as_deref()
        .is_none_or(|head| !head.eq_ignore_ascii_case(base_repo));
    Ok(Normalised::Build(Box::new(BuildSource {
        trigger: Trigger::PullRequest,
        repository: repository(&event.repository),
        commit_sha: pr.head.sha.to_ascii_lowercase().into(),
        git_ref: format!("refs/pull/{}/head", event.number),
        branch: Some(field(&pr.head.git_ref)),
        tag: None,
        pull_request: Some(PullRequestRef {
            number: event.number,
            title: cap(&pr.title, limits::MESSAGE_BYTES),
            author: field(pr.user.handle()),
            url: field(&pr.html_url),
            action: field(action),
            base_branch: field(&pr.base.git_ref),
            base_sha: pr.base.sha.to_ascii_lowercase().into(),
            head_branch: field(&pr.head.git_ref),
            head_repository,
            draft: pr.draft,
            approved_by: None,
            label: event.label.as_ref().map(|l| field(&l.name)),
        }),
        fork,
        pusher: None,
        sender: event.sender.as_ref().map(|s| field(s.handle())),
        head_commit: None,
        // The payload does not list a pull request's files.
        changed_paths: ChangedPaths {
            paths: Vec::new(),
            truncated: true,
        },
        compare_url: None,
        signed_at_ms: pr.updated_at.0.unwrap_or_default(),
        received_at_ms: 0,
        installation_id: event.installation.as_ref().map(|i| i.id),
        attempt: 1,
        member: None,
        compute: Default::default(),
        run: None,
    })))
}
