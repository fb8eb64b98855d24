//! Secrets from SSM Parameter Store (the webhook secrets, the GitHub token,
//! chat webhook URLs), decrypted and cached with a TTL.
//!
//! Two parameters may be active at once (current and previous) so a user
//! can rotate the secret in GitHub and SSM without dropping deliveries. A
//! missing or empty parameter is simply not a secret: with none at all,
//! every delivery is refused (fail closed).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cache::TtlCache;
use super::describe_sdk_error;
use super::first_read::{FirstRead, Reads, value_of};

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no secret is configured: SSM parameter(s) {names} missing or empty")]
    NotConfigured { names: String },
    #[error("could not read SSM parameter(s) {names}: {reason}")]
    Unavailable { names: String, reason: String },
}

/// SecureString parameters, decrypted and cached.
pub struct SecretCache {
    reads: Reads,
    names: Vec<String>,
    cache: TtlCache<[Secret]>,
}

impl SecretCache {
    /// `names`: the current parameter first, then an optional previous one.
    pub fn new(ssm: aws_sdk_ssm::Client, names: Vec<String>, ttl: Duration) -> Self {
        SecretCache {
            reads: Reads::new(ssm),
            names,
            cache: TtlCache::new(ttl),
        }
    }

    /// The parameters it reads.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Takes its first read from `read` when that names its parameters
    /// (see [`FirstRead`]).
    pub fn with_first_read(mut self, read: &Arc<FirstRead>) -> Self {
        self.reads.share(read, &self.names);
        self
    }

    /// The active secrets, from the cache while it is fresh.
    pub async fn get(&self) -> Result<Arc<[Secret]>, SecretError> {
        self.get_fresher_than(self.cache.ttl()).await
    }

    /// The active secrets, re-read if the cached ones are older than `age`.
    /// After a signature mismatch the handler asks for a re-read if the
    /// cache is more than a little old, so a rotation takes effect at once.
    /// While SSM is unreachable the known secrets keep verifying.
    pub async fn get_fresher_than(&self, age: Duration) -> Result<Arc<[Secret]>, SecretError> {
        self.cache
            .get(
                age,
                || self.fetch(),
                |e| matches!(e, SecretError::Unavailable { .. }),
            )
            .await
    }

    async fn fetch(&self) -> Result<Arc<[Secret]>, SecretError> {
        let names = self.names.join(", ");
        if self.names.is_empty() {
            return Err(SecretError::NotConfigured {
                names: "(none named)".into(),
            });
        }
        let params = self
            .reads
            .parameters(&self.names, self.cache.ttl())
            .await
            .map_err(|reason| SecretError::Unavailable {
                names: names.clone(),
                reason,
            })?;
        // Keep the order of `names`: current secret first.
        let secrets: Vec<Secret> = self
            .names
            .iter()
            .filter_map(|name| value_of(&params, name))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .collect();
        if secrets.is_empty() {
            return Err(SecretError::NotConfigured { names });
        }
        Ok(secrets.into())
    }
}

/// Webhook secrets of single repositories or organisations: SecureStrings
/// under one SSM path, each named by the target's numeric id as GitHub
/// sends it in `X-GitHub-Hook-Installation-Target-ID`
/// (`/gantry/webhook-secrets/186853002`). One repository's admin then
/// cannot sign deliveries for another. The whole path is read with
/// `GetParametersByPath` once per TTL, never once per delivery, so requests
/// naming made-up targets cost SSM nothing.
pub struct TargetSecrets {
    ssm: aws_sdk_ssm::Client,
    path: String,
    cache: TtlCache<BTreeMap<u64, Secret>>,
}

impl TargetSecrets {
    /// `path` ends with `/`.
    pub fn new(ssm: aws_sdk_ssm::Client, path: String, ttl: Duration) -> Self {
        TargetSecrets {
            ssm,
            path,
            cache: TtlCache::new(ttl),
        }
    }

    pub async fn get(&self) -> Result<Arc<BTreeMap<u64, Secret>>, SecretError> {
        self.get_fresher_than(self.cache.ttl()).await
    }

    pub async fn get_fresher_than(
        &self,
        age: Duration,
    ) -> Result<Arc<BTreeMap<u64, Secret>>, SecretError> {
        self.cache
            .get(
                age,
                || self.fetch(),
                |e| matches!(e, SecretError::Unavailable { .. }),
            )
            .await
    }

    async fn fetch(&self) -> Result<Arc<BTreeMap<u64, Secret>>, SecretError> {
        let mut secrets = BTreeMap::new();
        let mut pages = self
            .ssm
            .get_parameters_by_path()
            .path(self.path.trim_end_matches('/'))
            .recursive(false)
            .with_decryption(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| SecretError::Unavailable {
                names: format!("{}*", self.path),
                reason: describe_sdk_error(&e),
            })?;
            for p in page.parameters() {
                let id = p
                    .name()
                    .and_then(|n| n.strip_prefix(self.path.as_str()))
                    .and_then(|id| id.parse::<u64>().ok());
                let value = p.value().map(str::trim).filter(|v| !v.is_empty());
                if let (Some(id), Some(value)) = (id, value) {
                    secrets.insert(id, Secret::new(value));
                }
            }
        }
        Ok(Arc::new(secrets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
