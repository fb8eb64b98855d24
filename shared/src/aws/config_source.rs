//! `gantry.yaml` as deployed: an SSM parameter, read and checked once, then
//! cached with a TTL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::describe_sdk_error;
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Severity};

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

struct Cached {
    fetched: Instant,
    config: Arc<Config>,
}

pub struct ConfigSource {
    ssm: aws_sdk_ssm::Client,
    name: String,
    ttl: Duration,
    state: Mutex<Option<Cached>>,
}

impl ConfigSource {
    pub fn new(ssm: aws_sdk_ssm::Client, name: impl Into<String>, ttl: Duration) -> Self {
        ConfigSource {
            ssm,
            name: name.into(),
            ttl,
            state: Mutex::new(None),
        }
    }

    pub fn parameter_name(&self) -> &str {
        &self.name
    }

    pub async fn get(&self) -> Result<Arc<Config>, ConfigError> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.as_ref()
            && cached.fetched.elapsed() < self.ttl
        {
            return Ok(cached.config.clone());
        }
        match self.fetch().await {
            Ok(config) => {
                *state = Some(Cached {
                    fetched: Instant::now(),
                    config: config.clone(),
                });
                Ok(config)
            }
            Err(ConfigError::Unavailable { name, reason }) if state.is_some() => {
                tracing::warn!(parameter = %name, %reason, "SSM unavailable; using the cached configuration");
                match state.as_ref() {
                    Some(cached) => Ok(cached.config.clone()),
                    None => Err(ConfigError::Unavailable { name, reason }),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch(&self) -> Result<Arc<Config>, ConfigError> {
        let out = self
            .ssm
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                let not_found = e
                    .as_service_error()
                    .is_some_and(aws_sdk_ssm::operation::get_parameter::GetParameterError::is_parameter_not_found);
                if not_found {
                    ConfigError::Missing { name: self.name.clone() }
                } else {
                    ConfigError::Unavailable { name: self.name.clone(), reason: describe_sdk_error(&e) }
                }
            })?;
        let text = out.parameter().and_then(|p| p.value()).unwrap_or_default();
        match Config::parse(text) {
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
