//! Thin helpers over the AWS SDK clients: each does one thing the functions
//! need and turns the SDK's errors into ours, with context.
//!
//! The clients are the real SDK clients; tests point them at the moto server
//! through `AWS_ENDPOINT_URL`, exactly as Lambda points them at AWS.

pub mod artifacts;
pub mod bus;
mod cache;
pub mod config_source;
pub mod ledger;
pub mod parameters;
pub mod records;
pub mod secrets;

use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK configuration from the environment, loaded once per cold start.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
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
