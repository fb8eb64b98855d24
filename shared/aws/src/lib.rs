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
pub mod first_read;
pub mod github;
pub mod lambda;
pub mod ledger;
pub mod logging;
pub mod on_first_use;
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

/// The SDK configuration of a function, made once per cold start from the
/// environment Lambda gives every function: its region (`AWS_REGION`), its
/// role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` when set (the moto server in
/// tests, the cold-start harness's stub). Timeouts are `default` unless the
/// environment overrides them.
///
/// Not aws-config's loader: the chains it links for what the environment
/// lacks (profile files, IMDS, ECS, STS for web identity, SSO) can never be
/// asked on Lambda, and were 0.3 MB of every function's binary
/// (docs/PERFORMANCE.md). Without the region or the credentials, a function
/// fails its start naming the variable. The CLI keeps the loader
/// ([`sdk_loader`]).
pub fn load_sdk_config(default: AwsTimeouts) -> Result<SdkConfig, SettingsError> {
    lambda_sdk_config(&Env(lambda::env_var), default)
}

/// [`load_sdk_config`] from `env`.
pub fn lambda_sdk_config<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    default: AwsTimeouts,
) -> Result<SdkConfig, SettingsError> {
    use aws_config::Region;
    use aws_config::identity::IdentityCache;
    use aws_config::retry::RetryConfig;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;

    let timeouts = AwsTimeouts::from_env(env, default)?;
    let region = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .ok_or(SettingsError::Missing("AWS_REGION"))?;
    let credentials = Credentials::new(
        env.required("AWS_ACCESS_KEY_ID")?,
        env.required("AWS_SECRET_ACCESS_KEY")?,
        env.get("AWS_SESSION_TOKEN"),
        None,
        "Lambda environment",
    );
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .identity_cache(IdentityCache::lazy().build())
        .http_client(tls::sdk_http_client())
        .timeout_config(timeouts.timeout_config())
        .retry_config(RetryConfig::standard());
    if let Some(url) = env.get("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(url);
    }
    Ok(config.build())
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

    /// An environment from a table, for tests.
    pub(crate) fn lambda_env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env(move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    const LAMBDA: &[(&str, &str)] = &[
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "ASIAFUNCTIONROLE"),
        ("AWS_SECRET_ACCESS_KEY", "role-secret-never-logged"),
        ("AWS_SESSION_TOKEN", "role-session-token"),
    ];

    #[test]
    fn a_function_without_its_region_or_credentials_fails_its_start_naming_the_variable() {
        for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            let vars: Vec<(&str, &str)> = LAMBDA
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = lambda_sdk_config(&lambda_env(&vars), AwsTimeouts::SHORT).expect_err(missing);
            assert!(
                matches!(err, SettingsError::Missing(name) if name == missing),
                "{err}"
            );
        }
        // The older name of the region, which the SDK's own loader reads too.
        let mut vars: Vec<(&str, &str)> = LAMBDA[1..].to_vec();
        vars.push(("AWS_DEFAULT_REGION", "ap-south-1"));
        let config = lambda_sdk_config(&lambda_env(&vars), AwsTimeouts::SHORT).expect("valid");
        assert_eq!(config.region().map(|r| r.as_ref()), Some("ap-south-1"));
    }

    /// What a function's clients send: signed with the role's credentials
    /// and session token from the environment, in its region, to
    /// `AWS_ENDPOINT_URL`, within its timeouts.
    #[tokio::test(flavor = "current_thread")]
    async fn a_functions_calls_are_signed_with_the_environments_credentials() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("a connection");
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.expect("read");
                assert!(n > 0, "the request ended early");
                head.extend_from_slice(&buf[..n]);
            }
            let body = r#"{"FailedEntryCount":0,"Entries":[{"EventId":"e-1"}]}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            tcp.write_all(answer.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&head).to_ascii_lowercase()
        });

        let mut vars: Vec<(&str, &str)> = LAMBDA.to_vec();
        vars.push(("AWS_ENDPOINT_URL", &endpoint));
        let config = lambda_sdk_config(&lambda_env(&vars), AwsTimeouts::SHORT).expect("valid");
        assert_eq!(
            config.timeout_config().and_then(|t| t.operation_timeout()),
            Some(AwsTimeouts::SHORT.operation)
        );
        let events = aws_sdk_eventbridge::Client::new(&config);
        events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("gantry.test")
                    .detail_type("Test")
                    .detail("{}")
                    .build(),
            )
            .send()
            .await
            .expect("sent to the endpoint");
        let head = server.await.expect("the server");
        assert!(
            head.contains("credential=asiafunctionrole/") && head.contains("/eu-west-1/events/"),
            "{head}"
        );
        assert!(
            head.contains("x-amz-security-token: role-session-token"),
            "{head}"
        );
        assert!(!head.contains("role-secret"), "{head}");
    }
}
