//! `gantry.yaml` as deployed: an SSM parameter, read and checked once, then
//! cached with a TTL.

use std::sync::Arc;
use std::time::Duration;

use super::cache::TtlCache;
use super::describe_sdk_error;
use super::first_read::{FirstRead, FirstReadShare, value_of};
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
    ssm: aws_sdk_ssm::Client,
    name: String,
    cache: TtlCache<Config>,
    first: Option<FirstReadShare>,
}

impl ConfigSource {
    pub fn new(ssm: aws_sdk_ssm::Client, name: impl Into<String>, ttl: Duration) -> Self {
        ConfigSource {
            ssm,
            name: name.into(),
            cache: TtlCache::new(ttl),
            first: None,
        }
    }

    /// Takes its first read from `read` when that names the parameter (see
    /// [`FirstRead`]).
    pub fn with_first_read(mut self, read: &Arc<FirstRead>) -> Self {
        self.first = FirstReadShare::new(read.clone(), std::slice::from_ref(&self.name));
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
        let first = match &self.first {
            Some(first) => first.take(self.cache.ttl()).await,
            None => None,
        };
        let text = match first {
            Some(Ok(params)) => value_of(params, &self.name)
                .ok_or_else(|| ConfigError::Missing {
                    name: self.name.clone(),
                })?
                .to_owned(),
            Some(Err(reason)) => {
                return Err(ConfigError::Unavailable {
                    name: self.name.clone(),
                    reason: reason.to_owned(),
                });
            }
            None => self.read().await?,
        };
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

    /// The parameter's text, by its own request (boxed, as
    /// [`FirstRead`]'s is: nested in a function's futures the SDK's
    /// future takes them past rustc's layout depth limit).
    async fn read(&self) -> Result<String, ConfigError> {
        let out = Box::pin(
            self.ssm
                .get_parameter()
                .name(&self.name)
                .with_decryption(true)
                .send(),
        )
        .await
        .map_err(|e| {
            let not_found = e.as_service_error().is_some_and(
                aws_sdk_ssm::operation::get_parameter::GetParameterError::is_parameter_not_found,
            );
            if not_found {
                ConfigError::Missing {
                    name: self.name.clone(),
                }
            } else {
                ConfigError::Unavailable {
                    name: self.name.clone(),
                    reason: describe_sdk_error(&e),
                }
            }
        })?;
        Ok(out
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_owned())
    }
}
