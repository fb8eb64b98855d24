//! What a function shows GitHub: a token (the simple mode: one token from
//! SSM for every repository, or none for public ones), or, in App mode, an
//! installation token made for the one repository and the least
//! permissions each call needs (see [`super::app`]).
//!
//! The mode is the deployment's (`GITHUB_APP_ID` set or not), read once
//! by [`GitHubSettings::from_env`]; the installation comes from each
//! delivery (`BuildSource::installation_id`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::app::{AppKey, AppKeyError, InstallationTokens, Permissions};
use super::contents::{self, GitHubClient, GitHubError};
use crate::secrets::{Secret, SecretCache, SecretError};
use gantry_core::settings::{Env, SettingsError};

/// The App's id (a number; unset or empty: token mode).
pub const APP_ID_VAR: &str = "GITHUB_APP_ID";
/// The SSM SecureString holding the App's private key (PEM).
pub const APP_KEY_PARAMETER_VAR: &str = "GITHUB_APP_KEY_PARAMETER";
/// In App mode, also post commit statuses beside the check runs
/// (`true`); by default a moment is reported once, as a check run.
pub const APP_STATUSES_VAR: &str = "GITHUB_APP_STATUSES";
/// The SSM SecureString holding the token (token mode).
pub const TOKEN_PARAMETER_VAR: &str = "GITHUB_TOKEN_PARAMETER";

/// How long the token and the App's key are kept before SSM is asked
/// again (a rotation takes effect within this).
const SECRET_TTL: Duration = Duration::from_secs(300);

/// The App mode's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    pub app_id: u64,
    pub key_parameter: String,
    /// Statuses as well as check runs.
    pub statuses_too: bool,
}

/// Where GitHub is and how a function signs in to it, as `template.yaml`
/// sets the environment.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    pub api_url: String,
    /// Each request's limit (`GITHUB_TIMEOUT_MS`, default 10 s).
    pub timeout: Duration,
    /// Token mode's token; `None` reads public repositories only.
    pub token_parameter: Option<String>,
    /// App mode, when `GITHUB_APP_ID` is set.
    pub app: Option<AppSettings>,
}

impl GitHubSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, SettingsError> {
        let (api_url, timeout) = contents::api_from_env(env)?;
        let app = match env.get(APP_ID_VAR) {
            None => None,
            Some(id) => Some(AppSettings {
                app_id: id.parse().ok().filter(|&n: &u64| n > 0).ok_or_else(|| {
                    SettingsError::Invalid {
                        name: APP_ID_VAR,
                        reason: format!("`{id}` is not a GitHub App id (a number)"),
                    }
                })?,
                key_parameter: env.required(APP_KEY_PARAMETER_VAR)?,
                statuses_too: match env.get(APP_STATUSES_VAR).as_deref() {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(other) => {
                        return Err(SettingsError::Invalid {
                            name: APP_STATUSES_VAR,
                            reason: format!("`{other}` is neither true nor false"),
                        });
                    }
                },
            }),
        };
        Ok(GitHubSettings {
            api_url,
            timeout,
            token_parameter: env.get(TOKEN_PARAMETER_VAR),
            app,
        })
    }

    pub fn client(&self) -> GitHubClient {
        GitHubClient::with_timeout(&self.api_url, self.timeout)
    }

    pub fn credentials(&self, ssm: &aws_sdk_ssm::Client) -> Credentials {
        match &self.app {
            Some(app) => Credentials::App(App {
                settings: app.clone(),
                key: SecretCache::new(ssm.clone(), vec![app.key_parameter.clone()], SECRET_TTL),
                client: self.client(),
                tokens: Mutex::default(),
            }),
            None => Credentials::Token(
                self.token_parameter
                    .as_ref()
                    .map(|name| SecretCache::new(ssm.clone(), vec![name.clone()], SECRET_TTL)),
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("GitHub token: {0}")]
    Token(SecretError),
    #[error("the GitHub App's private key: {0}")]
    KeyUnavailable(SecretError),
    #[error(transparent)]
    Key(#[from] AppKeyError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
}

impl CredentialsError {
    /// Worth retrying: SSM or GitHub unreachable.
    pub fn is_transient(&self) -> bool {
        match self {
            CredentialsError::Token(e) | CredentialsError::KeyUnavailable(e) => {
                matches!(e, SecretError::Unavailable { .. })
            }
            CredentialsError::GitHub(e) => e.is_transient(),
            CredentialsError::Key(_) => false,
        }
    }
}

/// A token mode or App mode credential source.
pub enum Credentials {
    /// The simple mode's one token; `None`: public repositories only.
    Token(Option<SecretCache>),
    App(App),
}

/// App mode: the key from SSM, the installation tokens it makes.
pub struct App {
    settings: AppSettings,
    key: SecretCache,
    client: GitHubClient,
    /// Built from the key last read; made anew when the key changes.
    tokens: Mutex<Option<(Secret, Arc<InstallationTokens>)>>,
}

impl Credentials {
    /// The SSM parameters it reads: the App's key or the token, if any.
    pub fn parameters(&self) -> &[String] {
        match self {
            Credentials::Token(token) => token.as_ref().map_or(&[], SecretCache::names),
            Credentials::App(app) => app.key.names(),
        }
    }

    /// Takes the first read of the key or token from `read` when that
    /// names it (see [`FirstRead`](crate::first_read::FirstRead)).
    pub fn with_first_read(self, read: &Arc<crate::first_read::FirstRead>) -> Self {
        match self {
            Credentials::Token(token) => Credentials::Token(token.map(|t| t.with_first_read(read))),
            Credentials::App(app) => Credentials::App(App {
                key: app.key.with_first_read(read),
                ..app
            }),
        }
    }

    pub fn is_app(&self) -> bool {
        matches!(self, Credentials::App(_))
    }

    /// In App mode, whether statuses are posted beside check runs.
    pub fn app_settings(&self) -> Option<&AppSettings> {
        match self {
            Credentials::App(app) => Some(&app.settings),
            Credentials::Token(_) => None,
        }
    }

    /// The token for a call on `repo` needing `permissions`: the token
    /// mode's one (`None` when there is none), or an installation token for
    /// `repo` alone with `permissions` alone, on `installation` (the
    /// delivery's; looked up when `None`).
    pub async fn token(
        &self,
        installation: Option<u64>,
        repo: &str,
        permissions: Permissions,
    ) -> Result<Option<Secret>, CredentialsError> {
        match self.required(installation, repo, permissions).await {
            Ok(token) => Ok(Some(token)),
            // Token mode without a token reads public repositories.
            Err(CredentialsError::Token(SecretError::NotConfigured { .. }))
                if matches!(self, Credentials::Token(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// App mode: a JWT as the App itself, signed at `now` (epoch seconds)
    /// with the key installation tokens are made with (the same cache): for
    /// what no installation token may do, such as the App's own webhook's
    /// deliveries. `None` in token mode.
    pub async fn app_jwt(&self, now: u64) -> Result<Option<Secret>, CredentialsError> {
        match self {
            Credentials::Token(_) => Ok(None),
            Credentials::App(app) => {
                let pem = app.pem().await?;
                Ok(Some(AppKey::from_pem(app.settings.app_id, &pem)?.jwt(now)?))
            }
        }
    }

    /// [`Self::token`], and its absence an error naming what to set: for
    /// writes, which no anonymous call can make.
    pub async fn required(
        &self,
        installation: Option<u64>,
        repo: &str,
        permissions: Permissions,
    ) -> Result<Secret, CredentialsError> {
        match self {
            Credentials::Token(None) => Err(CredentialsError::Token(SecretError::NotConfigured {
                names: format!("(none: {TOKEN_PARAMETER_VAR} is not set)"),
            })),
            // The parameter's own error names it: what to put in SSM.
            Credentials::Token(Some(cache)) => cache
                .get()
                .await
                .map_err(CredentialsError::Token)?
                .first()
                .cloned()
                .ok_or_else(|| {
                    CredentialsError::Token(SecretError::NotConfigured {
                        names: format!("({TOKEN_PARAMETER_VAR}'s)"),
                    })
                }),
            Credentials::App(app) => {
                let tokens = app.tokens().await?;
                let now = gantry_core::events::now_ms() / 1000;
                let installation = match installation {
                    Some(id) => id,
                    None => tokens.installation_of(repo, now).await?,
                };
                Ok(tokens.token(installation, repo, permissions, now).await?)
            }
        }
    }
}

impl App {
    /// The App's private key, as last read from SSM.
    async fn pem(&self) -> Result<Secret, CredentialsError> {
        let keys = self
            .key
            .get()
            .await
            .map_err(CredentialsError::KeyUnavailable)?;
        keys.first().cloned().ok_or_else(|| {
            CredentialsError::KeyUnavailable(SecretError::NotConfigured {
                names: self.settings.key_parameter.clone(),
            })
        })
    }

    async fn tokens(&self) -> Result<Arc<InstallationTokens>, CredentialsError> {
        let pem = self.pem().await?;
        if let Ok(guard) = self.tokens.lock()
            && let Some((known, tokens)) = guard.as_ref()
            && known.expose() == pem.expose()
        {
            return Ok(Arc::clone(tokens));
        }
        let key = AppKey::from_pem(self.settings.app_id, &pem)?;
        let tokens = Arc::new(InstallationTokens::new(self.client.clone(), key));
        if let Ok(mut guard) = self.tokens.lock() {
            *guard = Some((pem, Arc::clone(&tokens)));
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<GitHubSettings, SettingsError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        GitHubSettings::from_env(&Env(move |name: &str| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        }))
    }

    #[test]
    fn the_mode_is_the_app_id_and_a_bad_one_is_named() {
        let token = settings(&[(TOKEN_PARAMETER_VAR, "/gantry/github-token")]).expect("valid");
        assert_eq!(token.app, None);
        assert_eq!(
            token.token_parameter.as_deref(),
            Some("/gantry/github-token")
        );
        let app = settings(&[
            (APP_ID_VAR, "12345"),
            (APP_KEY_PARAMETER_VAR, "/gantry/github-app/private-key"),
        ])
        .expect("valid");
        assert_eq!(
            app.app,
            Some(AppSettings {
                app_id: 12345,
                key_parameter: "/gantry/github-app/private-key".into(),
                statuses_too: false,
            })
        );
        // An empty id is token mode, as CloudFormation passes an unset one.
        assert_eq!(settings(&[(APP_ID_VAR, "")]).expect("valid").app, None);
        let err = settings(&[(APP_ID_VAR, "my-app")]).expect_err("not a number");
        assert!(err.to_string().contains(APP_ID_VAR), "{err}");
        let err = settings(&[(APP_ID_VAR, "7")]).expect_err("no key");
        assert!(err.to_string().contains(APP_KEY_PARAMETER_VAR), "{err}");
        let err = settings(&[
            (APP_ID_VAR, "7"),
            (APP_KEY_PARAMETER_VAR, "/k"),
            (APP_STATUSES_VAR, "yes"),
        ])
        .expect_err("not a boolean");
        assert!(err.to_string().contains(APP_STATUSES_VAR), "{err}");
    }
}
