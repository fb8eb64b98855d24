//! The webhook Lambda: GitHub deliveries in through a function URL,
//! `Build Requested` / `Build Skipped` out on the EventBridge bus.
//!
//! `main.rs` only wires; [`handler`] holds the logic, and [`function_url`]
//! adapts Lambda's function-URL event to it. `gantry dev` serves the same
//! handler over plain HTTP.

pub mod handler;

use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use http::HeaderValue;

use gantry_aws::bus::EventBus;
use gantry_aws::config_source::ConfigSource;
use gantry_aws::first_read::FirstRead;
use gantry_aws::ledger::DeliveryLedger;
use gantry_aws::secrets::{SecretCache, TargetSecrets};
use gantry_core::deadline::Deadline;
use gantry_core::settings::Env;

pub use handler::{Deps, Reply, TIMEOUT, handle, handle_until, worst_case};

/// The function's settings, from its environment (set by `template.yaml`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub secret_parameters: Vec<String>,
    /// Where per-repository (per-organisation) secrets live, named by the
    /// target's id; `None`: the shared secret only.
    pub target_secrets_path: Option<String>,
    pub config_parameter: String,
    pub delivery_bucket: String,
    pub event_bus: String,
    pub max_body_bytes: usize,
    pub secret_ttl: Duration,
    pub config_ttl: Duration,
    /// `REPLAY_WINDOW_SECONDS`; 0 or unset: off.
    pub replay_window: Option<Duration>,
}

pub use gantry_core::settings::SettingsError;

impl Settings {
    /// Reads the settings through `var` (the process environment in Lambda).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        let mut secret_parameters = vec![env.required("WEBHOOK_SECRET_PARAMETER")?];
        if let Some(previous) = env.get("WEBHOOK_SECRET_PREVIOUS_PARAMETER") {
            secret_parameters.push(previous);
        }
        let target_secrets_path = env.get("WEBHOOK_TARGET_SECRETS_PATH");
        if let Some(path) = &target_secrets_path
            && (!path.starts_with('/') || !path.ends_with('/'))
        {
            return Err(SettingsError::Invalid {
                name: "WEBHOOK_TARGET_SECRETS_PATH",
                reason: format!("`{path}` must start and end with `/`"),
            });
        }
        let replay_window = env.number("REPLAY_WINDOW_SECONDS", 0u64)?;
        Ok(Settings {
            secret_parameters,
            target_secrets_path,
            config_parameter: env.required("CONFIG_PARAMETER")?,
            delivery_bucket: env.required("DELIVERY_BUCKET")?,
            event_bus: env.or("EVENT_BUS_NAME", "gantry"),
            max_body_bytes: env.number("MAX_BODY_BYTES", handler::DEFAULT_MAX_BODY_BYTES)?,
            secret_ttl: Duration::from_secs(env.number("SECRET_TTL_SECONDS", 300)?),
            config_ttl: Duration::from_secs(env.number("CONFIG_TTL_SECONDS", 60)?),
            replay_window: (replay_window > 0).then(|| Duration::from_secs(replay_window)),
        })
    }

    /// The handler's dependencies over clients from one SDK configuration.
    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let mut secrets =
            SecretCache::new(ssm.clone(), self.secret_parameters.clone(), self.secret_ttl);
        let mut config =
            ConfigSource::new(ssm.clone(), self.config_parameter.clone(), self.config_ttl);
        // A cold start's first delivery reads the secrets and the
        // configuration in one request.
        let first = [
            self.secret_parameters.as_slice(),
            std::slice::from_ref(&self.config_parameter),
        ]
        .concat();
        if let Some(first) = FirstRead::new(ssm.clone(), &first) {
            secrets = secrets.with_first_read(&first);
            config = config.with_first_read(&first);
        }
        Deps {
            secrets,
            target_secrets: self
                .target_secrets_path
                .clone()
                .map(|path| TargetSecrets::new(ssm.clone(), path, self.secret_ttl)),
            config,
            ledger: DeliveryLedger::new(aws_sdk_s3::Client::new(sdk), self.delivery_bucket.clone()),
            bus: EventBus::new(
                aws_sdk_eventbridge::Client::new(sdk),
                self.event_bus.clone(),
            ),
            max_body_bytes: self.max_body_bytes,
            replay_window: self.replay_window,
            aws_timeout: sdk
                .timeout_config()
                .and_then(|t| t.operation_timeout())
                .unwrap_or(gantry_aws::AwsTimeouts::WEBHOOK.operation),
        }
    }
}

/// Lambda function URL adapter: decodes the body (base64 when Lambda says
/// so) and turns the reply into a function URL response.
pub async fn function_url(
    deps: &Deps,
    request: LambdaFunctionUrlRequest,
    deadline: Deadline,
) -> LambdaFunctionUrlResponse {
    let body = request.body.unwrap_or_default();
    let reply = if request.is_base64_encoded {
        match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
            Ok(bytes) => handle_until(deps, &request.headers, &bytes, deadline).await,
            Err(_) => Reply {
                status: 400,
                body: serde_json::json!({ "outcome": "refused", "reason": "body is not valid base64" }).to_string(),
            },
        }
    } else {
        handle_until(deps, &request.headers, body.as_bytes(), deadline).await
    };
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(reply.status);
    response.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.body = Some(reply.body);
    response
}
