//! What every function's `main` shares: [`serve`], the one entry point
//! (logging, settings, the SDK configuration, the Lambda runtime with each
//! invocation's deadline), and [`diagnostic`], the one conversion of a
//! function's error into what the Lambda runtime reports: its kind as
//! `errorType`, its message (safe to show: no error of Gantry's holds a
//! secret) as `errorMessage`.

use std::future::Future;

use aws_config::SdkConfig;
use gantry_core::deadline::Deadline;
use gantry_core::failure::ErrorKind;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AwsTimeouts;

/// Reads one environment variable; what [`serve`] hands the settings.
pub type EnvVar = fn(&str) -> Option<String>;

pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Runs a function until Lambda ends the process: logging first, then its
/// `settings` from the environment, the SDK configuration with `timeouts`
/// (overridable from the environment), its `deps` made once from both, and
/// then the Lambda runtime, calling `handler` with each event's payload and
/// the invocation's deadline. The dependencies live as long as the process
/// (they are leaked once, which is what a Lambda process wants: they hold
/// the clients and caches its invocations share).
pub async fn serve<S, SettingsErr, D, E, R, Fut>(
    timeouts: AwsTimeouts,
    settings: impl FnOnce(EnvVar) -> Result<S, SettingsErr>,
    deps: impl FnOnce(&S, &SdkConfig) -> D,
    handler: impl Fn(&'static D, E, Deadline) -> Fut,
) -> Result<(), lambda_runtime::Error>
where
    SettingsErr: Into<lambda_runtime::Error>,
    D: 'static,
    E: DeserializeOwned,
    R: Serialize,
    Fut: Future<Output = Result<R, Diagnostic>>,
{
    crate::logging::init();
    let settings = settings(env_var).map_err(Into::into)?;
    let sdk = crate::load_sdk_config(timeouts)?;
    let deps: &'static D = Box::leak(Box::new(deps(&settings, &sdk)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| {
        handler(
            deps,
            event.payload,
            Deadline::at_epoch_ms(event.context.deadline),
        )
    }))
    .await
}

pub fn diagnostic<E: ErrorKind>(error: E) -> Diagnostic {
    Diagnostic {
        error_type: error.kind().to_owned(),
        error_message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::diagnostic;
    use crate::report::ReportError;
    use gantry_core::deadline::OutOfTime;

    #[test]
    fn the_runtime_is_told_the_kind_and_the_reason() {
        let error = ReportError::OutOfTime(OutOfTime {
            effect: "status".into(),
            left_ms: 120,
            needed_ms: 2000,
        });
        let message = error.to_string();
        let d = diagnostic(error);
        assert_eq!(d.error_type, "report.OutOfTime");
        assert_eq!(d.error_message, message);
        assert!(d.error_message.contains("status"), "{}", d.error_message);
    }

    #[test]
    fn a_busy_claim_is_not_reported_as_an_outage() {
        let d = diagnostic(ReportError::Busy {
            effect: "notify",
            holder: "build-events/abc".into(),
        });
        assert_eq!(d.error_type, "report.EffectBusy");
    }
}
