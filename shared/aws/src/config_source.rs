//! `gantry.yaml` as deployed: an SSM parameter, read and checked once, then
//! cached with a TTL.

use std::sync::Arc;
use std::time::Duration;

use super::cache::TtlCache;
use super::first_read::{FirstRead, Reads};
use gantry_core::config::Config;
use gantry_core::diagnostic::{Diagnostic, Severity};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration parameter {name} does not exist")]
    Missing { name: String },
    #[error("could not read configuration parameter {name}: {reason}")]
    Unavailable { name: String, reason: String },
    #[error("configuration parameter {name} is invalid: {}", summary(.diagnostics))]
    Invalid {
        name: String,
        diagnostics: Vec<Diagnostic>,
    },
}

fn summary(diagnostics: &[Diagnostic]) -> String {
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .take(5)
        .map(ToString::to_string)
        .collect();
    errors.join("; ")
}

pub struct ConfigSource {
    reads: Reads,
    name: String,
    cache: TtlCache<Config>,
}

impl ConfigSource {
    pub fn new(ssm: aws_sdk_ssm::Client, name: impl Into<String>, ttl: Duration) -> Self {
        ConfigSource {
            reads: Reads::new(ssm),
            name: name.into(),
            cache: TtlCache::new(ttl),
        }
    }

    /// Takes its first read from `read` when that names the parameter (see
    /// [`FirstRead`]).
    pub fn with_first_read(mut self, read: &Arc<FirstRead>) -> Self {
        self.reads.share(read, std::slice::from_ref(&self.name));
        self
    }

    pub fn parameter_name(&self) -> &str {
        &self.name
    }

    /// The configuration, read at most once per TTL; while SSM is
    /// unreachable the last one read keeps applying.
    pub async fn get(&self) -> Result<Arc<Config>, ConfigError> {
        self.cache
            .get(
                self.cache.ttl(),
                || self.fetch(),
                |e| matches!(e, ConfigError::Unavailable { .. }),
            )
            .await
    }

    async fn fetch(&self) -> Result<Arc<Config>, ConfigError> {
        let text = self
            .reads
            .parameter(&self.name, self.cache.ttl())
            .await
            .map_err(|reason| ConfigError::Unavailable {
                name: self.name.clone(),
                reason,
            })?
            .ok_or_else(|| ConfigError::Missing {
                name: self.name.clone(),
            })?;
        match Config::parse(&text) {
            Ok((config, warnings)) => {
                for w in &warnings {
                    tracing::warn!(parameter = %self.name, diagnostic = %w, "configuration warning");
                }
                Ok(Arc::new(config))
            }
            Err(diagnostics) => Err(ConfigError::Invalid {
                name: self.name.clone(),
                diagnostics,
            }),
        }
    }
}
