//! A webhook's recent deliveries, and asking GitHub to redeliver one:
//!
//! - App mode, the App's own webhook, with the App's JWT:
//!   `GET /app/hook/deliveries`, `POST /app/hook/deliveries/{id}/attempts`;
//! - token mode, a repository's webhook (`GET /repos/{owner}/{repo}/hooks`
//!   finds it by its URL), with the token:
//!   `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`,
//!   `POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{id}/attempts`.
//!
//! Listing follows GitHub's cursor (the `Link` header's `rel="next"`),
//! newest first, until the deliveries are older than asked for or a page
//! bound. Which deliveries to redeliver is decided by
//! [`gantry_core::github::deliveries::to_redeliver`]; a redelivery of a
//! delivery the webhook did handle is answered `duplicate` by its delivery
//! ledger, so asking is always safe.
//!
//! Neither the token nor the JWT is ever in an error: GitHub's answers are
//! redacted of the credential the request carried.

use serde::Deserialize;

use super::contents::{GitHubClient, GitHubError, transport};
use super::statuses::check_repo;
use crate::secrets::Secret;
use gantry_core::github::deliveries::{Delivery, next_link};

/// Deliveries asked for per page (GitHub's most).
pub const PER_PAGE: usize = 100;
/// Pages of deliveries read at most per hook in one listing.
pub const MAX_PAGES: usize = 10;

/// Where a webhook's deliveries are listed and redelivered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// The GitHub App's webhook (App mode; the JWT signs in).
    App,
    /// Webhook `id` of repository `repo` (`owner/name`; token mode).
    Repository { repo: String, id: u64 },
}

impl Hook {
    fn segments(&self) -> Result<Vec<String>, GitHubError> {
        Ok(match self {
            Hook::App => vec!["app".into(), "hook".into()],
            Hook::Repository { repo, id } => {
                let (owner, name) = check_repo(repo)?;
                vec![
                    "repos".into(),
                    owner.into(),
                    name.into(),
                    "hooks".into(),
                    id.to_string(),
                ]
            }
        })
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hook::App => f.write_str("the App's webhook"),
            Hook::Repository { repo, id } => write!(f, "webhook {id} of {repo}"),
        }
    }
}

/// One of a repository's webhooks, as `GET /repos/{owner}/{repo}/hooks`
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryHook {
    pub id: u64,
    /// Where it delivers (`config.url`).
    pub url: Option<String>,
    pub active: bool,
}

#[derive(Deserialize)]
struct HookAnswer {
    id: u64,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    config: HookConfig,
}

#[derive(Deserialize, Default)]
struct HookConfig {
    #[serde(default)]
    url: Option<String>,
}

impl GitHubClient {
    /// The webhooks of `repo` (`owner/name`; one page of 100, more than
    /// GitHub allows a repository). The token needs the repository's
    /// "Webhooks" read permission (classic: `admin:repo_hook` or
    /// `read:repo_hook`); without it GitHub answers 404.
    pub async fn repository_hooks(
        &self,
        repo: &str,
        token: &Secret,
    ) -> Result<Vec<RepositoryHook>, GitHubError> {
        let (owner, name) = check_repo(repo)?;
        let what = format!("the webhooks of {repo}");
        let mut url = self.url(&["repos", owner, name, "hooks"])?;
        url.query_pairs_mut()
            .append_pair("per_page", &PER_PAGE.to_string());
        let response = self
            .call_ok(self.http.get(url), Some(token), token, &what)
            .await?;
        let hooks: Vec<serde_json::Value> =
            response.json().await.map_err(|e| unreadable(&what, &e))?;
        Ok(hooks
            .into_iter()
            .filter_map(|h| serde_json::from_value::<HookAnswer>(h).ok())
            .map(|h| RepositoryHook {
                id: h.id,
                url: h.config.url,
                active: h.active.unwrap_or(true),
            })
            .collect())
    }

    /// `hook`'s deliveries, newest first, as `auth` (the JWT for
    /// [`Hook::App`], the token otherwise) may list them: page after page
    /// until one reaches back before `since_ms` (epoch milliseconds), there
    /// is no next page, or `max_pages` were read. An entry GitHub lists in
    /// a shape Gantry does not read is left out, not an error.
    pub async fn hook_deliveries(
        &self,
        hook: &Hook,
        auth: &Secret,
        since_ms: u64,
        max_pages: usize,
    ) -> Result<Vec<Delivery>, GitHubError> {
        let what = format!("the deliveries of {hook}");
        let mut segments = hook.segments()?;
        segments.push("deliveries".into());
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let base = self.url(&segments)?;
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let mut url = base.clone();
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("per_page", &PER_PAGE.to_string());
                if let Some(c) = &cursor {
                    query.append_pair("cursor", c);
                }
            }
            let response = self
                .call_ok(self.http.get(url), Some(auth), auth, &what)
                .await?;
            // Only the cursor of GitHub's next link is followed, on our own
            // API base: the credential never goes anywhere else.
            let next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .and_then(|link| reqwest::Url::parse(link).ok())
                .and_then(|link| {
                    link.query_pairs()
                        .find(|(k, _)| k == "cursor")
                        .map(|(_, v)| v.into_owned())
                });
            let page: Vec<serde_json::Value> =
                response.json().await.map_err(|e| unreadable(&what, &e))?;
            let page: Vec<Delivery> = page
                .into_iter()
                .filter_map(|d| serde_json::from_value(d).ok())
                .collect();
            let reached_back = page.is_empty()
                || page
                    .iter()
                    .any(|d| d.delivered_at.0.is_some_and(|at| at < since_ms));
            all.extend(page);
            match next {
                Some(next) if !reached_back && cursor.as_deref() != Some(next.as_str()) => {
                    cursor = Some(next);
                }
                _ => break,
            }
        }
        Ok(all)
    }

    /// Asks GitHub to deliver attempt `delivery_id` of `hook` again (202:
    /// accepted). The token needs the repository's "Webhooks" write
    /// permission (classic: `admin:repo_hook`).
    pub async fn redeliver(
        &self,
        hook: &Hook,
        delivery_id: u64,
        auth: &Secret,
    ) -> Result<(), GitHubError> {
        let what = format!("a redelivery of delivery {delivery_id} of {hook}");
        let mut segments = hook.segments()?;
        segments.extend([
            "deliveries".into(),
            delivery_id.to_string(),
            "attempts".into(),
        ]);
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let url = self.url(&segments)?;
        self.call_ok(self.http.post(url), Some(auth), auth, &what)
            .await?;
        Ok(())
    }
}

fn unreadable(what: &str, e: &reqwest::Error) -> GitHubError {
    GitHubError::Transient {
        what: what.to_owned(),
        reason: format!("unreadable answer: {}", transport(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_name_their_paths_and_bad_repositories_send_nothing() {
        assert_eq!(
            Hook::App.segments().expect("valid"),
            vec!["app".to_owned(), "hook".to_owned()]
        );
        let repo = Hook::Repository {
            repo: "octo-org/widgets".into(),
            id: 42,
        };
        assert_eq!(
            repo.segments().expect("valid").join("/"),
            "repos/octo-org/widgets/hooks/42"
        );
        assert_eq!(repo.to_string(), "webhook 42 of octo-org/widgets");
        let bad = Hook::Repository {
            repo: "../admin".into(),
            id: 1,
        };
        assert!(matches!(bad.segments(), Err(GitHubError::BadPath { .. })));
    }
}
