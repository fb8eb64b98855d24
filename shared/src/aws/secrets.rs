//! Secrets from SSM Parameter Store (the webhook secrets, the GitHub token,
//! chat webhook URLs), decrypted and cached with a TTL.
//!
//! Two parameters may be active at once (current and previous) so a user
//! can rotate the secret in GitHub and SSM without dropping deliveries. A
//! missing or empty parameter is simply not a secret: with none at all,
//! every delivery is refused (fail closed).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cache::TtlCache;
use super::describe_sdk_error;

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
    ssm: aws_sdk_ssm::Client,
    names: Vec<String>,
    cache: TtlCache<[Secret]>,
}

impl SecretCache {
    /// `names`: the current parameter first, then an optional previous one.
    pub fn new(ssm: aws_sdk_ssm::Client, names: Vec<String>, ttl: Duration) -> Self {
        SecretCache {
            ssm,
            names,
            cache: TtlCache::new(ttl),
        }
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
        let out = self
            .ssm
            .get_parameters()
            .set_names(Some(self.names.clone()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| SecretError::Unavailable {
                names: names.clone(),
                reason: describe_sdk_error(&e),
            })?;
        // Keep the order of `names`: current secret first.
        let params = out.parameters();
        let secrets: Vec<Secret> = self
            .names
            .iter()
            .filter_map(|name| params.iter().find(|p| p.name() == Some(name.as_str())))
            .filter_map(|p| p.value())
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
