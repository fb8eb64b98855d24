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
    /// The text parsed last and its configuration: a refresh that reads
    /// the same text keeps it (see [`parse_once`]).
    parsed: std::sync::Mutex<Option<(String, Arc<Config>)>>,
}

impl ConfigSource {
    pub fn new(ssm: aws_sdk_ssm::Client, name: impl Into<String>, ttl: Duration) -> Self {
        ConfigSource {
            reads: Reads::new(ssm),
            name: name.into(),
            cache: TtlCache::new(ttl),
            parsed: std::sync::Mutex::new(None),
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
        let mut parsed = self
            .parsed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        parse_once(&mut parsed, text, &self.name)
    }
}

/// The configuration of `text`: `last`'s when `last` was parsed from the
/// same text, else `text` parsed (its warnings logged) and remembered in
/// `last`. The configuration is read again at every TTL, and is usually
/// unchanged: keeping it saves the parse, keeps the lists of globs a
/// delivery compiled, and logs a warning once per change, not once a TTL.
fn parse_once(
    last: &mut Option<(String, Arc<Config>)>,
    text: String,
    name: &str,
) -> Result<Arc<Config>, ConfigError> {
    if let Some((previous, config)) = last.as_ref()
        && *previous == text
    {
        return Ok(config.clone());
    }
    match Config::parse(&text) {
        Ok((config, warnings)) => {
            for w in &warnings {
                tracing::warn!(parameter = %name, diagnostic = %w, "configuration warning");
            }
            let config = Arc::new(config);
            *last = Some((text, config.clone()));
            Ok(config)
        }
        Err(diagnostics) => Err(ConfigError::Invalid {
            name: name.to_owned(),
            diagnostics,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "version: 1\nrepositories:\n  - name: octo-org/*\n    project: p\n    push:\n      branches: ['release/*']\n";

    #[test]
    fn an_unchanged_configuration_is_kept_with_its_compiled_lists() {
        let mut last = None;
        let first = parse_once(&mut last, TEXT.into(), "/gantry/config").expect("valid");
        let rules = first.repository("octo-org/a").expect("listed");
        assert!(
            rules
                .push
                .branches
                .as_ref()
                .is_some_and(|b| b.is_match("release/1"))
        );
        let again = parse_once(&mut last, TEXT.into(), "/gantry/config").expect("valid");
        assert!(Arc::ptr_eq(&first, &again), "the same text parsed again");
        // A changed text is parsed; a refused one is an error and leaves
        // the last good one to compare with.
        let changed = TEXT.replace("project: p", "project: q");
        let second = parse_once(&mut last, changed.clone(), "/gantry/config").expect("valid");
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(
            second.repository("octo-org/a").map(|r| r.project.as_str()),
            Some("q")
        );
        let refused = parse_once(&mut last, "version: 2\n".into(), "/gantry/config");
        assert!(matches!(refused, Err(ConfigError::Invalid { .. })));
        let third = parse_once(&mut last, changed, "/gantry/config").expect("valid");
        assert!(Arc::ptr_eq(&second, &third));
    }
}
