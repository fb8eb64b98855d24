//! Posting commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`).
//!
//! Posting the same (sha, context, state, description) twice is harmless:
//! GitHub keeps the latest status per context, so a retried event only
//! repeats what is already shown.

use serde::Serialize;

use super::contents::{GitHubClient, GitHubError};
use crate::secrets::Secret;
use gantry_core::github::statuses::{CommitStatus, StatusState, description};

/// The JSON body GitHub expects.
#[derive(Serialize)]
struct Body<'a> {
    state: StatusState,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<&'a str>,
    description: String,
    context: &'a str,
}

impl GitHubClient {
    /// Sets `status` on commit `sha` of `repo` (`owner/name`).
    ///
    /// Errors: [`GitHubError::BadPath`] for a malformed repo or sha (nothing
    /// is sent), [`GitHubError::Transient`] when GitHub is unreachable,
    /// failing (5xx) or rate limiting, [`GitHubError::Refused`] with GitHub's
    /// message otherwise (422 "No commit found for SHA: …", 404 for a
    /// repository the token cannot see). No error ever holds the token.
    pub async fn create_status(
        &self,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
        token: &Secret,
    ) -> Result<(), GitHubError> {
        let (owner, name) = check_repo(repo)?;
        check_sha(sha)?;
        let what = format!("status {:?} for {repo}@{sha}", status.context);
        let url = self.url(&["repos", owner, name, "statuses", sha])?;
        let body = Body {
            state: status.state,
            target_url: status.target_url.as_deref().filter(|u| is_web_url(u)),
            description: description(&status.description),
            context: &status.context,
        };
        self.call_ok(self.http.post(url).json(&body), Some(token), token, &what)
            .await?;
        Ok(())
    }
}

/// A GitHub answer that was not a success, as an error: transient for
/// 5xx and rate limits (primary and secondary), refused with GitHub's own
/// message otherwise. Never holds the token.
pub(super) async fn error_from(
    response: reqwest::Response,
    what: String,
    token: &Secret,
) -> GitHubError {
    {
        let code = response.status().as_u16();
        let headers = response.headers();
        let rate_limited = headers
            .get("x-ratelimit-remaining")
            .is_some_and(|v| v.as_bytes() == b"0")
            || headers.contains_key("retry-after");
        let text = response.text().await.unwrap_or_default();
        // GitHub never echoes the token, but a proxy in between might.
        let text = text.replace(token.expose(), "<redacted>");
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.trim().chars().take(200).collect());
        let secondary = message
            .to_ascii_lowercase()
            .contains("secondary rate limit");
        match code {
            429 => GitHubError::Transient {
                what,
                reason: "rate limited (429)".into(),
            },
            403 if rate_limited || secondary => GitHubError::Transient {
                what,
                reason: format!("rate limited (403): {message}"),
            },
            s if s >= 500 => GitHubError::Transient {
                what,
                reason: format!("HTTP {s}"),
            },
            _ => GitHubError::Refused {
                what,
                status: code,
                message,
            },
        }
    }
}

/// `owner/name` with the characters GitHub allows: owners are letters,
/// digits, `-` (and `_` for enterprise managed users), names add `.`.
pub(super) fn check_repo(repo: &str) -> Result<(&str, &str), GitHubError> {
    let bad = |reason| GitHubError::BadPath {
        path: repo.to_owned(),
        reason,
    };
    let (owner, name) = repo
        .split_once('/')
        .ok_or_else(|| bad("repository must be owner/name"))?;
    let owner_ok = (1..=100).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !owner_ok {
        return Err(bad("repository owner must be letters, digits, '-' or '_'"));
    }
    let name_ok = (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !name_ok {
        return Err(bad(
            "repository name must be letters, digits, '-', '_' or '.'",
        ));
    }
    Ok((owner, name))
}

/// A full commit id: 40 hex digits (SHA-1) or 64 (SHA-256 repositories).
pub(super) fn check_sha(sha: &str) -> Result<(), GitHubError> {
    if matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(GitHubError::BadPath {
            path: sha.to_owned(),
            reason: "commit sha must be 40 or 64 hex digits",
        })
    }
}

/// Only http(s) links are worth showing: GitHub refuses others with a 422,
/// and a refused status would leave the commit without one.
pub(super) fn is_web_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_and_shas_are_checked() {
        assert!(check_repo("octo-org/widgets.rs").is_ok());
        assert!(check_repo("me_corp/x_y-z").is_ok());
        for bad in [
            "", "widgets", "/x", "x/", "a/b/c", "a/..", "a/.", "a b/c", "a/c?d", "a/c#d",
        ] {
            assert!(check_repo(bad).is_err(), "{bad:?}");
        }
        assert!(check_sha(&"a".repeat(40)).is_ok());
        assert!(check_sha(&"0F".repeat(32)).is_ok());
        for bad in ["", "abc", &"g".repeat(40), &"a".repeat(41), "../../x"] {
            assert!(check_sha(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_web_links_are_kept() {
        assert!(is_web_url("https://example.com/build/1"));
        assert!(is_web_url("http://localhost:8080/x"));
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "ftp://x/y",
            "/x",
            "",
        ] {
            assert!(!is_web_url(bad), "{bad:?}");
        }
    }
}
