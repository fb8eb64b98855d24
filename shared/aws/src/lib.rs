//! Gantry's adapters: what carries out the decisions of `gantry-core`.
//! The SDK configuration and its timeouts, the bus, SSM (secrets and the
//! configuration, cached), S3 (records, claims as leases, the delivery
//! ledger, artifacts), and the GitHub and chat HTTP clients; each turns its
//! service's errors into ours, with context and never a secret.
//!
//! The clients are the real SDK clients; tests point them at the moto server
//! through `AWS_ENDPOINT_URL`, exactly as Lambda points them at AWS.

pub mod aggregate;
pub mod artifacts;
pub mod build_artifacts;
pub mod build_logs;
pub mod bus;
mod cache;
pub mod chat;
pub mod check_runs;
pub mod codebuild;
pub mod config_source;
pub mod github;
pub mod lambda;
pub mod ledger;
pub mod logging;
pub mod pages;
pub mod parameters;
pub mod records;
pub mod report;
pub mod sdk_http;
pub mod secrets;
pub mod secrets_manager;
pub mod test_reports;
pub mod tls;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use gantry_core::settings::{Env, SettingsError};

/// How long one AWS call may take, so that a stalled service becomes an
/// error the function handles (a 5xx to GitHub, a failed invocation that
/// Lambda retries) well before Lambda kills the function at its `Timeout`.
///
/// `attempt` bounds one HTTP attempt; `operation` bounds the call with the
/// SDK's retries (standard mode: 3 attempts, throttling and 5xx included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsTimeouts {
    pub attempt: Duration,
    pub operation: Duration,
}

/// Overrides the attempt timeout (milliseconds).
pub const ATTEMPT_TIMEOUT_VAR: &str = "GANTRY_AWS_ATTEMPT_TIMEOUT_MS";
/// Overrides the operation timeout (milliseconds).
pub const OPERATION_TIMEOUT_VAR: &str = "GANTRY_AWS_TIMEOUT_MS";

/// The SDK's connect timeout for current behaviour versions.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

impl AwsTimeouts {
    /// For the webhook: GitHub gives up after 10 s and the function's
    /// `Timeout` is 10 s. Its longest path is five calls in a row (the
    /// secret, the configuration, the claim, the publication, the claim's
    /// completion), so each gets 2 s (S3 and EventBridge answer in tens of
    /// milliseconds): the answer is out within the 10 s whatever stalls,
    /// and a claim is taken only with the 6 s its three calls need left.
    pub const WEBHOOK: AwsTimeouts = AwsTimeouts {
        attempt: Duration::from_millis(1000),
        operation: Duration::from_secs(2),
    };
    /// For functions with a 30–60 s `Timeout` (validate-buildspec,
    /// inject-secrets, pipeline-action): room for a GitHub call (10 s) and
    /// one stalled AWS call (12 s).
    pub const SHORT: AwsTimeouts = AwsTimeouts {
        attempt: Duration::from_secs(4),
        operation: Duration::from_secs(12),
    };
    /// For functions with a 300 s `Timeout` (start-build, build-events,
    /// reconcile), which make a handful of sequential calls and retry
    /// within the invocation (CodeBuild at its limit, chat rate limits):
    /// those retries and the calls around them must fit the 300 s, which a
    /// test checks against template.yaml.
    pub const LONG: AwsTimeouts = AwsTimeouts {
        attempt: Duration::from_secs(8),
        operation: Duration::from_secs(20),
    };

    /// `default`, with [`ATTEMPT_TIMEOUT_VAR`] and [`OPERATION_TIMEOUT_VAR`]
    /// (milliseconds) replacing its parts. An attempt timeout longer than
    /// the operation's is cut to it.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        default: AwsTimeouts,
    ) -> Result<AwsTimeouts, SettingsError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let operation = env.number(OPERATION_TIMEOUT_VAR, ms(default.operation))?;
        let attempt = env.number(ATTEMPT_TIMEOUT_VAR, ms(default.attempt))?;
        for (name, value) in [
            (OPERATION_TIMEOUT_VAR, operation),
            (ATTEMPT_TIMEOUT_VAR, attempt),
        ] {
            if value == 0 {
                return Err(SettingsError::Invalid {
                    name,
                    reason: "must be at least 1 millisecond".into(),
                });
            }
        }
        Ok(AwsTimeouts {
            attempt: Duration::from_millis(attempt.min(operation)),
            operation: Duration::from_millis(operation),
        })
    }

    /// As the SDK takes it; the connect timeout never outlasts an attempt.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(self.attempt))
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// The SDK's configuration loader, on the process's one HTTP and TLS stack
/// (see `tls` and `sdk_http`). The SDK crates are built without an HTTP
/// client of their own, so every SDK configuration starts here.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(tls::sdk_http_client())
}

/// The SDK configuration from the environment, loaded once per cold start,
/// with `default` timeouts unless the environment overrides them.
pub async fn load_sdk_config(default: AwsTimeouts) -> Result<SdkConfig, SettingsError> {
    let timeouts = AwsTimeouts::from_env(&Env(|name: &str| std::env::var(name).ok()), default)?;
    let mut loader = sdk_loader().timeout_config(timeouts.timeout_config());
    // Lambda gives a function its role's credentials in the environment,
    // and the default chain would take them first too; naming the provider
    // spares each cold start building the rest of the chain (an STS client
    // for web identity among it), which could never be asked.
    if ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    Ok(loader.load().await)
}

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An SDK error in one line: the service's code and message when it gave
/// them, else the transport's reason. Never the request, which could carry a
/// secret.
pub fn describe_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => format!("HTTP {}", service.raw().status().as_u16()),
            }
        }
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                "request timed out".into()
            } else if d.is_io() {
                "could not reach the service (connection failed)".into()
            } else {
                "could not send the request".into()
            }
        }
        SdkError::TimeoutError(_) => "request timed out".into(),
        SdkError::ResponseError(_) => "unreadable response from the service".into(),
        SdkError::ConstructionFailure(_) => "could not build the request".into(),
        _ => "unexpected SDK error".into(),
    }
}

/// The HTTP status of the service's response, if it answered at all.
pub fn http_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_default_per_function_and_yield_to_the_environment() {
        let none = Env(|_: &str| None);
        assert_eq!(
            AwsTimeouts::from_env(&none, AwsTimeouts::WEBHOOK).ok(),
            Some(AwsTimeouts::WEBHOOK)
        );
        let set = Env(|name: &str| match name {
            OPERATION_TIMEOUT_VAR => Some("300".into()),
            ATTEMPT_TIMEOUT_VAR => Some("900".into()),
            _ => None,
        });
        let t = AwsTimeouts::from_env(&set, AwsTimeouts::LONG).expect("valid");
        assert_eq!(t.operation, Duration::from_millis(300));
        assert_eq!(
            t.attempt,
            Duration::from_millis(300),
            "cut to the operation's"
        );
        let config = t.timeout_config();
        assert_eq!(config.operation_timeout(), Some(Duration::from_millis(300)));
        assert_eq!(config.connect_timeout(), Some(Duration::from_millis(300)));
        let zero = Env(|name: &str| (name == OPERATION_TIMEOUT_VAR).then(|| "0".to_owned()));
        assert!(AwsTimeouts::from_env(&zero, AwsTimeouts::LONG).is_err());
        let bad = Env(|name: &str| (name == ATTEMPT_TIMEOUT_VAR).then(|| "2s".to_owned()));
        assert!(AwsTimeouts::from_env(&bad, AwsTimeouts::LONG).is_err());
    }

    #[test]
    fn every_default_fits_its_functions_timeout() {
        // (default, the shortest `Timeout` in template.yaml it serves)
        for (t, lambda) in [
            (AwsTimeouts::WEBHOOK, 10),
            (AwsTimeouts::SHORT, 30),
            (AwsTimeouts::LONG, 300),
        ] {
            assert!(t.attempt <= t.operation);
            assert!(t.operation * 2 < Duration::from_secs(lambda), "{t:?}");
        }
    }
}
