//! Links to the build page, signed with the key Gantry keeps in SSM, and
//! the settings that shape them. The reporting functions put a link on
//! every status, check run and chat message of a build; the build-page
//! function checks them.
//!
//! The key is a SecureString of 32 random bytes in hex. CloudFormation
//! cannot create SecureStrings, so the first function that signs a link
//! creates it (`PutParameter` without overwrite: of two racing first
//! signers, one creates it and both then read the same key). To rotate it,
//! delete the parameter: every link given out until then stops opening.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_core::events::BuildSource;
use gantry_core::page::html::Disclosure;
use gantry_core::page::link::{self, Expiry, PageKey, Target};
use gantry_core::settings::{Env, SettingsError};

use crate::describe_sdk_error;
use crate::first_read::{FirstRead, Reads};

pub const PAGE_URL_VAR: &str = "BUILD_PAGE_URL";
pub const PAGE_KEY_PARAMETER_VAR: &str = "PAGE_KEY_PARAMETER";
pub const PAGE_LINK_DAYS_VAR: &str = "PAGE_LINK_DAYS";
pub const PUBLIC_FORK_PAGES_VAR: &str = "PUBLIC_FORK_PAGES";
pub const PRIVATE_REPOSITORY_PAGES_VAR: &str = "PRIVATE_REPOSITORY_PAGES";

/// How long a link opens its page unless configured: 30 days.
pub const DEFAULT_LINK_DAYS: u64 = 30;

/// What the page may show of a private repository's builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivatePages {
    /// Everything, log included, to whoever holds the link.
    Full,
    /// Result, phases and times; no log, commit message or title.
    Summary,
    /// No page: their links go to the AWS console, as before pages.
    None,
}

impl PrivatePages {
    pub fn parse(text: &str) -> Option<PrivatePages> {
        match text {
            "full" => Some(PrivatePages::Full),
            "summary" => Some(PrivatePages::Summary),
            "none" => Some(PrivatePages::None),
            _ => None,
        }
    }
}

/// The environment of a function that signs or serves pages.
#[derive(Debug, Clone)]
pub struct PageSettings {
    /// The build-page function's URL (no trailing `/`).
    pub base_url: String,
    pub key_parameter: String,
    pub link_days: u64,
    /// Fork builds hold no secrets: their links may never expire and
    /// their pages may be indexed.
    pub public_forks: bool,
    pub private: PrivatePages,
}

impl PageSettings {
    /// `None` when no page is deployed (`BUILD_PAGE_URL` unset or empty):
    /// links then go to the AWS console.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Option<PageSettings>, SettingsError> {
        let Some(base_url) = env.get(PAGE_URL_VAR).filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        PageSettings::with_base(env, &base_url).map(Some)
    }

    /// The settings with `base_url` given (the page itself links
    /// relatively, and cannot name its own function URL in its
    /// environment).
    pub fn with_base<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        base_url: &str,
    ) -> Result<PageSettings, SettingsError> {
        let private = env.or(PRIVATE_REPOSITORY_PAGES_VAR, "full");
        Ok(PageSettings {
            base_url: base_url.trim().trim_end_matches('/').to_owned(),
            key_parameter: env.required(PAGE_KEY_PARAMETER_VAR)?,
            link_days: env.number(PAGE_LINK_DAYS_VAR, DEFAULT_LINK_DAYS)?,
            public_forks: env.or(PUBLIC_FORK_PAGES_VAR, "false") == "true",
            private: PrivatePages::parse(&private).ok_or_else(|| SettingsError::Invalid {
                name: PRIVATE_REPOSITORY_PAGES_VAR,
                reason: format!("{private:?} is not full, summary or none"),
            })?,
        })
    }

    /// What the page of a build of `source` shows; `None`: it has no page.
    pub fn disclosure(&self, source: &BuildSource) -> Option<Disclosure> {
        if !source.repository.private {
            return Some(Disclosure::Full);
        }
        match self.private {
            PrivatePages::Full => Some(Disclosure::Full),
            PrivatePages::Summary => Some(Disclosure::Summary),
            PrivatePages::None => None,
        }
    }

    /// A fork's build (`trusted` false) whose page the operator made
    /// public.
    pub fn is_public(&self, source: &BuildSource, trusted: bool) -> bool {
        self.public_forks && !trusted && !source.repository.private
    }

    /// When a link made at `now_s` to a build's page stops opening it.
    pub fn expiry(&self, source: &BuildSource, trusted: bool, now_s: u64) -> Expiry {
        if self.is_public(source, trusted) {
            Expiry::Never
        } else {
            self.expiring(now_s)
        }
    }

    /// An expiry of [`PageSettings::link_days`] from `now_s`.
    pub fn expiring(&self, now_s: u64) -> Expiry {
        Expiry::At(now_s + self.link_days * 86_400)
    }

    /// `expires`, or one that expires if it does not: what a page hands on
    /// (its history, its rows) must not outlast a public fork page's link.
    pub fn bounded(&self, expires: Expiry, now_s: u64) -> Expiry {
        match expires {
            Expiry::At(at) => Expiry::At(at),
            Expiry::Never => self.expiring(now_s),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PageKeyError {
    #[error("the build page key {parameter} does not exist yet (the first signed link creates it)")]
    Missing { parameter: String },
    #[error("the build page key {parameter}: {reason}")]
    Unreadable { parameter: String, reason: String },
    #[error(
        "the build page key {parameter} cannot sign: {source}; delete the parameter and the next link Gantry signs makes a new key"
    )]
    Invalid {
        parameter: String,
        source: gantry_core::page::link::KeyError,
    },
}

/// How long a read key is used before it is read again (a deleted key
/// stops opening links within this).
const KEY_TTL: Duration = Duration::from_secs(300);

/// The page key, read from SSM once per [`KEY_TTL`].
pub struct PageKeys {
    reads: Reads,
    parameter: String,
    cached: tokio::sync::Mutex<Option<(Instant, Arc<PageKey>)>>,
}

impl PageKeys {
    pub fn new(ssm: aws_sdk_ssm::Client, parameter: impl Into<String>) -> PageKeys {
        PageKeys {
            reads: Reads::new(ssm),
            parameter: parameter.into(),
            cached: tokio::sync::Mutex::default(),
        }
    }

    /// Takes the first read of the key from `read` when that names it (see
    /// [`FirstRead`]).
    pub fn with_first_read(mut self, read: &Arc<FirstRead>) -> Self {
        self.reads
            .share(read, std::slice::from_ref(&self.parameter));
        self
    }

    /// The key (what the page function checks links with).
    pub async fn get(&self) -> Result<Arc<PageKey>, PageKeyError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, key)) = cached.as_ref()
            && at.elapsed() < KEY_TTL
        {
            return Ok(key.clone());
        }
        let key = Arc::new(self.read().await?);
        *cached = Some((Instant::now(), key.clone()));
        Ok(key)
    }

    /// The key, created if there is none yet (what signers use).
    pub async fn get_or_create(&self) -> Result<Arc<PageKey>, PageKeyError> {
        match self.get().await {
            Err(PageKeyError::Missing { .. }) => {}
            other => return other,
        }
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PageKeyError::Unreadable {
            parameter: self.parameter.clone(),
            reason: "no random bytes to make a key with".into(),
        })?;
        let created = self
            .reads
            .ssm()
            .put_parameter()
            .name(&self.parameter)
            .description("Gantry: signs build page links. Delete it to revoke every link.")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .value(gantry_core::hex::encode(&bytes))
            .overwrite(false)
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(parameter = %self.parameter, "created the build page key"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_already_exists()) => {}
            Err(e) => {
                return Err(PageKeyError::Unreadable {
                    parameter: self.parameter.clone(),
                    reason: describe_sdk_error(&e),
                });
            }
        }
        // Whoever created it, the stored key is the one.
        self.get().await
    }

    async fn read(&self) -> Result<PageKey, PageKeyError> {
        let value = self
            .reads
            .parameter(&self.parameter, KEY_TTL)
            .await
            .map_err(|reason| PageKeyError::Unreadable {
                parameter: self.parameter.clone(),
                reason,
            })?
            .ok_or_else(|| PageKeyError::Missing {
                parameter: self.parameter.clone(),
            })?;
        PageKey::from_hex(&value).map_err(|source| PageKeyError::Invalid {
            parameter: self.parameter.clone(),
            source,
        })
    }
}

/// What the reporting functions link builds with.
pub struct PageLinks {
    pub settings: PageSettings,
    pub keys: PageKeys,
}

impl PageLinks {
    pub fn new(settings: PageSettings, ssm: aws_sdk_ssm::Client) -> PageLinks {
        let keys = PageKeys::new(ssm, settings.key_parameter.clone());
        PageLinks { settings, keys }
    }

    /// Takes the first read of the key from `read` (see [`FirstRead`]).
    pub fn with_first_read(self, read: &Arc<FirstRead>) -> Self {
        PageLinks {
            keys: self.keys.with_first_read(read),
            ..self
        }
    }

    /// The link to the page of build `build_id` of `source`, made at
    /// `now_s`; for a failed build it opens at the first error. `trusted`
    /// is what the build's record says (unknown counts as trusted: its link
    /// expires). `None` when the build has no page (a private repository's,
    /// if the operator says so).
    pub async fn build_link(
        &self,
        build_id: &gantry_core::ids::BuildId,
        source: &BuildSource,
        trusted: bool,
        failed: bool,
        now_s: u64,
    ) -> Result<Option<String>, PageKeyError> {
        let Some(disclosure) = self.settings.disclosure(source) else {
            return Ok(None);
        };
        let key = self.keys.get_or_create().await?;
        let expires = self.settings.expiry(source, trusted, now_s);
        let mut url = link::url(
            &self.settings.base_url,
            &key,
            &Target::Build(build_id.clone()),
            expires,
        );
        if failed && disclosure == Disclosure::Full {
            url.push_str("#first-error");
        }
        Ok(Some(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<PageSettings>, SettingsError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        PageSettings::from_env(&Env(move |name: &str| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        }))
    }

    #[test]
    fn pages_are_on_when_their_url_is_set_and_the_policy_reads_strictly() {
        assert!(settings(&[]).expect("reads").is_none());
        let s = settings(&[
            (PAGE_URL_VAR, "https://abc.lambda-url.eu-west-1.on.aws/"),
            (PAGE_KEY_PARAMETER_VAR, "/gantry/page-key"),
        ])
        .expect("reads")
        .expect("on");
        assert_eq!(s.base_url, "https://abc.lambda-url.eu-west-1.on.aws");
        assert_eq!(s.link_days, 30);
        assert_eq!(s.private, PrivatePages::Full);
        assert!(!s.public_forks);
        assert!(matches!(
            settings(&[
                (PAGE_URL_VAR, "https://x"),
                (PAGE_KEY_PARAMETER_VAR, "/k"),
                (PRIVATE_REPOSITORY_PAGES_VAR, "some")
            ]),
            Err(SettingsError::Invalid {
                name: PRIVATE_REPOSITORY_PAGES_VAR,
                ..
            })
        ));
        assert!(matches!(
            settings(&[(PAGE_URL_VAR, "https://x")]),
            Err(SettingsError::Missing(PAGE_KEY_PARAMETER_VAR))
        ));
    }

    #[test]
    fn an_unusable_key_says_which_parameter_and_what_to_do() {
        let e = PageKeyError::Invalid {
            parameter: "/gantry/page-key".into(),
            source: gantry_core::page::link::KeyError::NotHex,
        };
        assert_eq!(
            e.to_string(),
            "the build page key /gantry/page-key cannot sign: it is not hexadecimal; delete the parameter and the next link Gantry signs makes a new key"
        );
    }
}
