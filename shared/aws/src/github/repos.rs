//! What Gantry reads of a repository besides files: a pull request's
//! changed files (path filters), a branch's head commit (schedules, manual
//! runs) and the repository itself (manual runs).

use serde::Deserialize;

use super::contents::{GitHubClient, GitHubError};
use super::statuses::{check_repo, error_from};
use crate::secrets::Secret;
use gantry_core::events::{ChangedPaths, RepositoryRef, limits};

/// GitHub lists at most this many files of a pull request
/// (`GET /repos/{owner}/{repo}/pulls/{number}/files`).
/// <https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files>
pub const MAX_PULL_REQUEST_FILES: usize = 3000;
/// Files per page, GitHub's most.
const PER_PAGE: usize = 100;

#[derive(Deserialize)]
struct File {
    filename: String,
    #[serde(default)]
    previous_filename: Option<String>,
}

#[derive(Deserialize)]
struct Owner {
    login: String,
}

#[derive(Deserialize)]
struct Repo {
    full_name: String,
    name: String,
    owner: Owner,
    clone_url: String,
    html_url: String,
    #[serde(default)]
    default_branch: Option<String>,
    #[serde(default)]
    private: bool,
}

/// A success's body as `T`; unreadable is transient (a proxy's page).
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, GitHubError> {
    response.json().await.map_err(|e| GitHubError::Transient {
        what: what.to_owned(),
        reason: format!("unreadable answer: {e}"),
    })
}

impl GitHubClient {
    async fn get_ok(
        &self,
        url: reqwest::Url,
        accept: &str,
        token: Option<&Secret>,
        what: &str,
    ) -> Result<reqwest::Response, GitHubError> {
        let response = self
            .call_as(self.http.get(url), accept, token, what)
            .await?;
        if response.status().is_success() {
            return Ok(response);
        }
        // Nothing to redact when no token was sent.
        let none = Secret::new("\u{0}");
        Err(error_from(response, what.to_owned(), token.unwrap_or(&none)).await)
    }

    /// The files pull request `number` of `repo` changes, renames by both
    /// names, page by page. `truncated` when GitHub's list stops at its
    /// 3,000 files, or the list is longer than an event keeps.
    pub async fn pull_request_files(
        &self,
        repo: &str,
        number: u64,
        token: Option<&Secret>,
    ) -> Result<ChangedPaths, GitHubError> {
        let (owner, name) = check_repo(repo)?;
        let what = format!("the files of {repo}#{number}");
        let number = number.to_string();
        let mut changed = ChangedPaths::default();
        let mut listed = 0usize;
        let mut bytes = 0usize;
        for page in 1..=MAX_PULL_REQUEST_FILES / PER_PAGE {
            let mut url = self.url(&["repos", owner, name, "pulls", &number, "files"])?;
            url.query_pairs_mut()
                .append_pair("per_page", &PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let files: Vec<File> = read_json(
                self.get_ok(url, "application/vnd.github+json", token, &what)
                    .await?,
                &what,
            )
            .await?;
            let n = files.len();
            listed += n;
            for f in files {
                for path in std::iter::once(f.filename).chain(f.previous_filename) {
                    if changed.paths.len() >= limits::CHANGED_PATHS
                        || bytes + path.len() > limits::CHANGED_PATHS_BYTES
                    {
                        changed.truncated = true;
                        continue;
                    }
                    if !changed.paths.contains(&path) {
                        bytes += path.len();
                        changed.paths.push(path);
                    }
                }
            }
            if n < PER_PAGE {
                return Ok(changed);
            }
        }
        // Every page was full: GitHub stopped at its limit, or would go on.
        changed.truncated |= listed >= MAX_PULL_REQUEST_FILES;
        Ok(changed)
    }

    /// The commit `branch` of `repo` points at now.
    pub async fn branch_head(
        &self,
        repo: &str,
        branch: &str,
        token: Option<&Secret>,
    ) -> Result<String, GitHubError> {
        let (owner, name) = check_repo(repo)?;
        if branch.is_empty()
            || branch
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(GitHubError::BadPath {
                path: branch.to_owned(),
                reason: "not a branch name",
            });
        }
        let what = format!("the head of {repo}:{branch}");
        let segments: Vec<&str> = ["repos", owner, name, "commits"]
            .into_iter()
            .chain(branch.split('/'))
            .collect();
        let url = self.url(&segments)?;
        // The commit's id alone, as text.
        let text = self
            .get_ok(url, "application/vnd.github.sha", token, &what)
            .await?
            .text()
            .await
            .map_err(|e| GitHubError::Transient {
                what: what.clone(),
                reason: format!("unreadable answer: {e}"),
            })?;
        let sha = text.trim().to_ascii_lowercase();
        if matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(sha)
        } else {
            Err(GitHubError::Refused {
                what,
                status: 200,
                message: "the answer is not a commit id".into(),
            })
        }
    }

    /// The repository, as a build's source names it.
    pub async fn repository(
        &self,
        repo: &str,
        token: Option<&Secret>,
    ) -> Result<RepositoryRef, GitHubError> {
        let (owner, name) = check_repo(repo)?;
        let what = format!("repository {repo}");
        let url = self.url(&["repos", owner, name])?;
        let r: Repo = read_json(
            self.get_ok(url, "application/vnd.github+json", token, &what)
                .await?,
            &what,
        )
        .await?;
        Ok(RepositoryRef {
            full_name: r.full_name.into(),
            owner: r.owner.login,
            name: r.name,
            clone_url: r.clone_url,
            html_url: r.html_url,
            default_branch: r.default_branch,
            private: r.private,
        })
    }
}
