//! A `push` delivery made from a local git repository, as GitHub would
//! send it for the commit: real `before` and `after`, the commits between
//! them with their changed paths, the repository named as on GitHub when
//! its `origin` is there. `gantry send --push` posts it, so the local
//! stack builds the user's own commit with their own gantry.yaml and
//! buildspec.

use std::path::Path;

use serde_json::{Value, json};

/// GitHub lists at most this many commits in a push's webhook.
const MAX_COMMITS: usize = 2048;
const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
#[error("{repo}: {reason}")]
pub struct PushError {
    pub repo: String,
    pub reason: String,
}

fn git(repo: &Path, args: &[&str]) -> Result<String, PushError> {
    crate::git::git(repo, args).map_err(|reason| PushError {
        repo: repo.display().to_string(),
        reason,
    })
}

/// `owner/name` from a GitHub remote URL (`https://github.com/o/n.git`,
/// `git@github.com:o/n.git`).
fn github_name(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let (owner, name) = rest.split_once('/')?;
    (!owner.is_empty() && !name.is_empty() && !name.contains('/'))
        .then(|| format!("{owner}/{name}"))
}

/// A stable number for a name: GitHub's ids are numbers, and a binding to
/// one must not change between two sends.
fn id_of(name: &str) -> u64 {
    // FNV-1a, 53 bits: exact in JSON numbers everywhere.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash & ((1 << 53) - 1)
}

/// What changed in `sha` against its first parent (all of it for a root
/// commit): added, removed, modified.
fn changes(repo: &Path, sha: &str) -> Result<[Vec<String>; 3], PushError> {
    let listing = git(
        repo,
        &[
            "diff-tree",
            "--no-commit-id",
            "--name-status",
            "-r",
            "--root",
            "--no-renames",
            sha,
        ],
    )?;
    let mut out: [Vec<String>; 3] = Default::default();
    for line in listing.lines() {
        let Some((status, path)) = line.split_once('\t') else {
            continue;
        };
        let slot = match status.chars().next() {
            Some('A') => 0,
            Some('D') => 1,
            _ => 2,
        };
        out[slot].push(path.to_owned());
    }
    Ok(out)
}

fn commit(repo: &Path, sha: &str, html_url: &str) -> Result<Value, PushError> {
    // One git call for everything but the paths: tree, author, time, then
    // the message, which may hold anything but NUL.
    let meta = git(
        repo,
        &["log", "-1", "--format=%T%x00%an%x00%ae%x00%aI%x00%B", sha],
    )?;
    let mut parts = meta.splitn(5, '\0');
    let mut next = || parts.next().unwrap_or_default();
    let (tree, name, email, time, message) = (next(), next(), next(), next(), next());
    let [added, removed, modified] = changes(repo, sha)?;
    Ok(json!({
        "id": sha,
        "tree_id": tree,
        "distinct": true,
        "message": message.trim_end(),
        "timestamp": time,
        "url": format!("{html_url}/commit/{sha}"),
        "author": {"name": name, "email": email},
        "committer": {"name": name, "email": email},
        "added": added,
        "removed": removed,
        "modified": modified,
    }))
}

/// The push of `git_ref` (a branch, or HEAD) as GitHub would deliver it,
/// `pushed_at` being `now_seconds`.
pub fn payload(repo: &Path, git_ref: &str, now_seconds: u64) -> Result<Value, PushError> {
    let after = git(
        repo,
        &["rev-parse", "--verify", &format!("{git_ref}^{{commit}}")],
    )?;
    let full_ref = match git(repo, &["rev-parse", "--symbolic-full-name", git_ref]) {
        Ok(r) if r.starts_with("refs/heads/") || r.starts_with("refs/tags/") => r,
        // A commit or a detached HEAD: pushed as the branch checked out,
        // else as `main`.
        _ => match git(repo, &["symbolic-ref", "-q", "HEAD"]) {
            Ok(r) if !r.is_empty() => r,
            _ => "refs/heads/main".to_owned(),
        },
    };
    let branch = full_ref
        .strip_prefix("refs/heads/")
        .unwrap_or("main")
        .to_owned();
    let before = git(
        repo,
        &["rev-parse", "--verify", "-q", &format!("{after}^1")],
    )
    .unwrap_or_else(|_| NO_COMMIT.to_owned());
    let full_name = git(repo, &["remote", "get-url", "origin"])
        .ok()
        .and_then(|url| github_name(&url))
        .unwrap_or_else(|| {
            let dir = std::fs::canonicalize(repo).unwrap_or_else(|_| repo.to_owned());
            let name = dir
                .file_name()
                .map_or("repository".into(), |n| n.to_string_lossy().into_owned());
            format!("local/{name}")
        });
    let (owner, name) = full_name.split_once('/').unwrap_or(("local", &full_name));
    let html_url = format!("https://github.com/{full_name}");
    let listed = if before == NO_COMMIT {
        vec![after.clone()]
    } else {
        let range = git(
            repo,
            &["rev-list", "--reverse", &format!("{before}..{after}")],
        )?;
        range.lines().map(str::to_owned).collect()
    };
    let listed = &listed[listed.len().saturating_sub(MAX_COMMITS)..];
    let commits = listed
        .iter()
        .map(|sha| commit(repo, sha, &html_url))
        .collect::<Result<Vec<_>, _>>()?;
    let head_commit = commits.last().cloned().unwrap_or(Value::Null);
    let user = git(repo, &["config", "user.name"]).unwrap_or_else(|_| "local-user".into());
    let login: String = user
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Ok(json!({
        "ref": full_ref,
        "before": before,
        "after": after,
        "created": before == NO_COMMIT,
        "deleted": false,
        "forced": false,
        "base_ref": null,
        "compare": format!("{html_url}/compare/{}...{}", &before[..12], &after[..12]),
        "commits": commits,
        "head_commit": head_commit,
        "repository": {
            "id": id_of(&full_name),
            "name": name,
            "full_name": full_name,
            "private": true,
            "fork": false,
            "owner": {"id": id_of(owner), "login": owner, "name": owner},
            "html_url": html_url,
            "clone_url": format!("{html_url}.git"),
            "default_branch": branch,
            "pushed_at": now_seconds,
        },
        "pusher": {"name": login},
        "sender": {"id": id_of(&login), "login": login},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_remotes_name_the_repository() {
        for url in [
            "https://github.com/octo-org/widgets.git",
            "git@github.com:octo-org/widgets.git",
            "ssh://git@github.com/octo-org/widgets",
        ] {
            assert_eq!(
                github_name(url).as_deref(),
                Some("octo-org/widgets"),
                "{url}"
            );
        }
        assert_eq!(github_name("https://gitlab.com/o/n.git"), None);
    }

    #[test]
    fn ids_are_stable_and_exact_in_json() {
        assert_eq!(id_of("octo-org/widgets"), id_of("octo-org/widgets"));
        assert_ne!(id_of("octo-org/widgets"), id_of("octo-org/gadgets"));
        assert!(id_of("x") < 1 << 53);
    }
}
