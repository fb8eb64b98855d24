//! Reading one file of a repository at one commit through GitHub's REST
//! contents API (`GET /repos/{owner}/{repo}/contents/{path}?ref=`), raw.
//!
//! The API base is configurable (`GITHUB_API_URL`, as GitHub's own runners
//! name it) for GitHub Enterprise Server and for tests.

use std::time::Duration;

use crate::secrets::Secret;

/// GitHub's REST API on github.com.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version we speak.
pub(super) const API_VERSION: &str = "2022-11-28";
/// Larger buildspecs are refused: CodeBuild's own inline limit is far below.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Found(String),
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// Worth retrying: GitHub unreachable, 5xx, rate limited.
    #[error("GitHub {what}: {reason}")]
    Transient { what: String, reason: String },
    /// Retrying will not help: the request itself is refused.
    #[error("GitHub refused {what}: HTTP {status}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    #[error("invalid path {path:?}: {reason}")]
    BadPath { path: String, reason: &'static str },
    /// Gantry cannot make the credential to ask with (the App's JWT):
    /// nothing was sent; the App's key is what to look at.
    #[error("cannot sign in to GitHub for {what}: {reason}")]
    Credentials { what: String, reason: String },
}

impl GitHubError {
    pub fn is_transient(&self) -> bool {
        matches!(self, GitHubError::Transient { .. })
    }
}

#[derive(Clone)]
pub struct GitHubClient {
    pub(super) http: reqwest::Client,
    pub(super) api: String,
    timeout: Duration,
}

/// How long one GitHub request may take by default: GitHub's own webhook
/// budget, and well inside every function's `Timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Overrides [`DEFAULT_TIMEOUT`] (milliseconds).
pub const TIMEOUT_VAR: &str = "GITHUB_TIMEOUT_MS";

/// The GitHub API base (`GITHUB_API_URL`, github.com's by default) and
/// each request's limit ([`TIMEOUT_VAR`]), as every function that calls
/// GitHub reads them.
pub fn api_from_env<F: Fn(&str) -> Option<String>>(
    env: &gantry_core::settings::Env<F>,
) -> Result<(String, Duration), gantry_core::settings::SettingsError> {
    let ms = u64::try_from(DEFAULT_TIMEOUT.as_millis()).unwrap_or(10_000);
    Ok((
        env.or("GITHUB_API_URL", DEFAULT_API_URL),
        Duration::from_millis(env.number(TIMEOUT_VAR, ms)?),
    ))
}

impl GitHubClient {
    pub fn new(api: &str) -> Self {
        Self::with_timeout(api, DEFAULT_TIMEOUT)
    }

    /// A client whose every request (connect to last byte) ends within
    /// `timeout`, as a transient error.
    pub fn with_timeout(api: &str, timeout: Duration) -> Self {
        let http = crate::tls::client_builder()
            .timeout(timeout)
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        GitHubClient {
            http,
            api: api.trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    /// The longest one request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// The API's URL for `segments`, each percent-encoded as one segment.
    /// Sends `request` as GitHub's REST API wants it (its JSON media type,
    /// the API version, `token` as the bearer): GitHub's response whatever
    /// its status; a transport failure as a transient error about `what`.
    pub(super) async fn call(
        &self,
        request: reqwest::RequestBuilder,
        token: Option<&Secret>,
        what: &str,
    ) -> Result<reqwest::Response, GitHubError> {
        self.call_as(request, "application/vnd.github+json", token, what)
            .await
    }

    /// [`Self::call`] asking for another media type (`accept`).
    pub(super) async fn call_as(
        &self,
        request: reqwest::RequestBuilder,
        accept: &str,
        token: Option<&Secret>,
        what: &str,
    ) -> Result<reqwest::Response, GitHubError> {
        let mut request = request
            .header("accept", accept)
            .header("x-github-api-version", API_VERSION);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        request.send().await.map_err(|e| GitHubError::Transient {
            what: what.to_owned(),
            reason: transport(&e),
        })
    }

    /// [`Self::call`], and any answer but a success as an error (redacted
    /// of `secret`, the credential the request carried).
    pub(super) async fn call_ok(
        &self,
        request: reqwest::RequestBuilder,
        token: Option<&Secret>,
        secret: &Secret,
        what: &str,
    ) -> Result<reqwest::Response, GitHubError> {
        let response = self.call(request, token, what).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(super::statuses::error_from(response, what.to_owned(), secret).await)
        }
    }

    pub(super) fn url(&self, segments: &[&str]) -> Result<reqwest::Url, GitHubError> {
        let mut url = reqwest::Url::parse(&self.api).map_err(|_| GitHubError::BadPath {
            path: self.api.clone(),
            reason: "GITHUB_API_URL is not a URL",
        })?;
        url.path_segments_mut()
            .map_err(|()| GitHubError::BadPath {
                path: self.api.clone(),
                reason: "GITHUB_API_URL cannot be a base",
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// The raw bytes of `path` in `repo` (`owner/name`) at `git_ref`.
    pub async fn file_at(
        &self,
        repo: &str,
        path: &str,
        git_ref: &str,
        token: Option<&Secret>,
    ) -> Result<Fetched, GitHubError> {
        check_path(path)?;
        let what = format!("{repo}:{path}@{git_ref}");
        let segments: Vec<&str> = std::iter::once("repos")
            .chain(repo.split('/'))
            .chain(std::iter::once("contents"))
            .chain(path.split('/'))
            .collect();
        let mut url = self.url(&segments)?;
        url.query_pairs_mut().append_pair("ref", git_ref);
        let response = self
            .call_as(
                self.http.get(url),
                "application/vnd.github.raw+json",
                token,
                &what,
            )
            .await?;
        let status = response.status().as_u16();
        let rate_limited = response
            .headers()
            .get("x-ratelimit-remaining")
            .is_some_and(|v| v.as_bytes() == b"0");
        match status {
            200 => {
                let bytes = response.bytes().await.map_err(|e| GitHubError::Transient {
                    what: what.clone(),
                    reason: transport(&e),
                })?;
                if bytes.len() > MAX_FILE_BYTES {
                    return Err(GitHubError::Refused {
                        what,
                        status,
                        message: format!("file is {} bytes, over {MAX_FILE_BYTES}", bytes.len()),
                    });
                }
                Ok(Fetched::Found(String::from_utf8_lossy(&bytes).into_owned()))
            }
            404 => Ok(Fetched::NotFound),
            429 => Err(GitHubError::Transient {
                what,
                reason: "rate limited (429)".into(),
            }),
            403 if rate_limited => Err(GitHubError::Transient {
                what,
                reason: "rate limited (403)".into(),
            }),
            s if s >= 500 => Err(GitHubError::Transient {
                what,
                reason: format!("HTTP {s}"),
            }),
            _ => {
                let body = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| body.chars().take(200).collect());
                Err(GitHubError::Refused {
                    what,
                    status,
                    message,
                })
            }
        }
    }
}

pub(super) fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

/// A repository-relative path: no empty, `.` or `..` segments, not absolute.
fn check_path(path: &str) -> Result<(), GitHubError> {
    let bad = |reason| {
        Err(GitHubError::BadPath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() || path.starts_with('/') {
        return bad("must be relative to the repository root");
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("must not contain empty, '.' or '..' segments");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside_the_repository() {
        assert!(check_path("buildspec.yml").is_ok());
        assert!(check_path("ci/build spec.yml").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a//b", "a/./b"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}
