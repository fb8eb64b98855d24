//! Gantry as a GitHub App: a JSON Web Token signed with the App's private
//! key (RS256; `iss` the App's id, issued a minute back for clock drift,
//! expiring within GitHub's ten minutes), exchanged for installation access
//! tokens (`POST /app/installations/{id}/access_tokens`), each asked for
//! with the one repository and the least permissions the call needs, and
//! cached until shortly before GitHub's `expires_at`.
//!
//! Neither the key, the JWT nor a token is ever in an error or a log line:
//! they are [`Secret`]s, and GitHub's answers are redacted of them.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::contents::{GitHubClient, GitHubError, transport};
use super::statuses::check_repo;
use crate::secrets::Secret;

/// The JWT is dated this far back, for a clock a little ahead of GitHub's.
const ISSUED_BACK_SECS: u64 = 60;
/// And expires this long after now: GitHub refuses more than ten minutes.
const LIFETIME_SECS: u64 = 9 * 60;
/// A cached token is not used in its last minutes: a call made with it
/// must not outlive it.
const REFRESH_MARGIN_SECS: u64 = 5 * 60;

/// The App's private key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AppKeyError {
    /// Never says anything of the key's contents.
    #[error("the GitHub App's private key is not an RSA key in PEM form ({0})")]
    NotAKey(String),
    #[error("signing the GitHub App's token failed ({0})")]
    Signing(String),
}

/// The App's id and private key.
pub struct AppKey {
    app_id: u64,
    key: jsonwebtoken::EncodingKey,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppKey {{ app_id: {}, key: <redacted> }}", self.app_id)
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct Claims {
    pub iat: u64,
    pub exp: u64,
    /// The App's id.
    pub iss: String,
}

impl AppKey {
    /// The key GitHub handed out (`-----BEGIN RSA PRIVATE KEY-----`, or
    /// PKCS#8) for App `app_id`.
    pub fn from_pem(app_id: u64, pem: &Secret) -> Result<AppKey, AppKeyError> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_ref())
            .map_err(|e| AppKeyError::NotAKey(kind(&e)))?;
        Ok(AppKey { app_id, key })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// The App's JWT at `now` (epoch seconds).
    pub fn jwt(&self, now: u64) -> Result<Secret, AppKeyError> {
        let claims = Claims {
            iat: now.saturating_sub(ISSUED_BACK_SECS),
            exp: now + LIFETIME_SECS,
            iss: self.app_id.to_string(),
        };
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| AppKeyError::Signing(kind(&e)))
    }
}

/// What went wrong, by kind only: jsonwebtoken's messages may quote input.
fn kind(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidKeyFormat => "not a key in a format it knows".into(),
        ErrorKind::InvalidRsaKey(_) => "not a valid RSA key".into(),
        _ => "unusable".into(),
    }
}

/// A permission an installation token is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
}

/// The permissions one call needs; the rest are not asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Permissions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Access>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contents: Option<Access>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Access>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_requests: Option<Access>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Access>,
}

impl Permissions {
    /// Reading a buildspec at a commit.
    pub const READ_CONTENTS: Permissions = Permissions {
        checks: None,
        contents: Some(Access::Read),
        statuses: None,
        pull_requests: None,
        metadata: None,
    };
    /// Creating and updating check runs.
    pub const WRITE_CHECKS: Permissions = Permissions {
        checks: Some(Access::Write),
        contents: None,
        statuses: None,
        pull_requests: None,
        metadata: None,
    };
    /// Posting commit statuses.
    /// Listing a check suite's runs (Re-run all).
    pub const READ_CHECKS: Permissions = Permissions {
        checks: Some(Access::Read),
        contents: None,
        statuses: None,
        pull_requests: None,
        metadata: None,
    };
    pub const WRITE_STATUSES: Permissions = Permissions {
        checks: None,
        contents: None,
        statuses: Some(Access::Write),
        pull_requests: None,
        metadata: None,
    };
    /// Listing a pull request's files (path filters).
    pub const READ_PULL_REQUESTS: Permissions = Permissions {
        checks: None,
        contents: None,
        statuses: None,
        pull_requests: Some(Access::Read),
        metadata: None,
    };
    /// Reading a collaborator's permission.
    pub const READ_METADATA: Permissions = Permissions {
        checks: None,
        contents: None,
        statuses: None,
        pull_requests: None,
        metadata: Some(Access::Read),
    };
}

#[derive(Serialize)]
struct TokenBody<'a> {
    repositories: [&'a str; 1],
    permissions: &'a Permissions,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: String,
}

type TokenKey = (u64, String, Permissions);

/// Installation access tokens, made and cached.
pub struct InstallationTokens {
    client: GitHubClient,
    key: AppKey,
    cache: Mutex<HashMap<TokenKey, (Secret, u64)>>,
    /// Repositories' installations, as looked up (they do not change
    /// while the App stays installed).
    installations: Mutex<HashMap<String, u64>>,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

impl InstallationTokens {
    pub fn new(client: GitHubClient, key: AppKey) -> InstallationTokens {
        InstallationTokens {
            client,
            key,
            cache: Mutex::default(),
            installations: Mutex::default(),
        }
    }

    /// The installation of the App on `repo` (`GET /repos/{owner}/{repo}/
    /// installation`, as the App), for what no delivery names one for: a
    /// CodePipeline execution's commit, a build reconciled. 404 (not
    /// installed there) is a refusal.
    pub async fn installation_of(&self, repo: &str, now: u64) -> Result<u64, GitHubError> {
        let (owner, name) = check_repo(repo)?;
        let known = repo.to_ascii_lowercase();
        if let Ok(cache) = self.installations.lock()
            && let Some(id) = cache.get(&known)
        {
            return Ok(*id);
        }
        let what = format!("the App's installation on {repo}");
        let jwt = self.key.jwt(now).map_err(|e| GitHubError::Credentials {
            what: what.clone(),
            reason: e.to_string(),
        })?;
        let url = self.client.url(&["repos", owner, name, "installation"])?;
        let response = self
            .client
            .call_ok(self.client.http.get(url), Some(&jwt), &jwt, &what)
            .await?;
        let found: Installation = response.json().await.map_err(|e| GitHubError::Transient {
            what: what.clone(),
            reason: format!("unreadable answer: {}", transport(&e)),
        })?;
        if let Ok(mut cache) = self.installations.lock() {
            cache.insert(known, found.id);
        }
        Ok(found.id)
    }

    /// A token of installation `installation_id` for `repo` (`owner/name`)
    /// with `permissions`, at `now` (epoch seconds): the cached one while
    /// it has more than a few minutes left, else a new one.
    pub async fn token(
        &self,
        installation_id: u64,
        repo: &str,
        permissions: Permissions,
        now: u64,
    ) -> Result<Secret, GitHubError> {
        let (_, name) = check_repo(repo)?;
        let key = (installation_id, repo.to_owned(), permissions);
        if let Ok(cache) = self.cache.lock()
            && let Some((token, expires)) = cache.get(&key)
            && now + REFRESH_MARGIN_SECS < *expires
        {
            return Ok(token.clone());
        }
        let what = format!("an installation token for {repo}");
        let jwt = self.key.jwt(now).map_err(|e| GitHubError::Credentials {
            what: what.clone(),
            reason: e.to_string(),
        })?;
        let id = installation_id.to_string();
        let url = self
            .client
            .url(&["app", "installations", &id, "access_tokens"])?;
        let request = self.client.http.post(url).json(&TokenBody {
            repositories: [name],
            permissions: &permissions,
        });
        let response = self
            .client
            .call_ok(request, Some(&jwt), &jwt, &what)
            .await?;
        let answer: TokenAnswer = response.json().await.map_err(|e| GitHubError::Transient {
            what: what.clone(),
            reason: format!("unreadable answer: {}", transport(&e)),
        })?;
        let expires = gantry_core::time::parse_rfc3339(&answer.expires_at)
            .map(|ms| ms / 1000)
            // GitHub's tokens last an hour; an unreadable date is taken as
            // the shortest that still serves this call.
            .unwrap_or(now + REFRESH_MARGIN_SECS);
        let token = Secret::new(answer.token);
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (_, e)| now + REFRESH_MARGIN_SECS < *e);
            cache.insert(key, (token.clone(), expires));
        }
        Ok(token)
    }
}

/// What GitHub made of a manifest: the new App and its credentials.
#[derive(Debug)]
pub struct Registered {
    pub id: u64,
    pub slug: String,
    /// The App's page on GitHub.
    pub html_url: String,
    pub pem: Secret,
    pub webhook_secret: Secret,
}

#[derive(Deserialize)]
struct Conversion {
    id: u64,
    slug: String,
    html_url: String,
    pem: String,
    webhook_secret: Option<String>,
}

impl GitHubClient {
    /// `POST /app-manifests/{code}/conversions`: the code GitHub sent the
    /// browser back with (valid for an hour) becomes the App's id, key and
    /// webhook secret. Unauthenticated, as GitHub's flow is.
    pub async fn convert_manifest(&self, code: &str) -> Result<Registered, GitHubError> {
        if code.is_empty()
            || code.len() > 100
            || !code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(GitHubError::BadPath {
                path: code.chars().take(100).collect(),
                reason: "a manifest code is letters, digits, '-' and '_'",
            });
        }
        let what = "the App manifest's conversion".to_owned();
        let url = self.url(&["app-manifests", code, "conversions"])?;
        let response = self
            .call_ok(self.http.post(url), None, &Secret::new(code), &what)
            .await?;
        let c: Conversion = response.json().await.map_err(|e| GitHubError::Transient {
            what: what.clone(),
            reason: format!("unreadable answer: {}", transport(&e)),
        })?;
        Ok(Registered {
            id: c.id,
            slug: c.slug,
            html_url: c.html_url,
            pem: Secret::new(c.pem),
            webhook_secret: Secret::new(c.webhook_secret.unwrap_or_default()),
        })
    }
}
