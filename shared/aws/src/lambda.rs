//! The one conversion of a function's error into what the Lambda runtime
//! reports: its kind as `errorType`, its message (safe to show: no error
//! of Gantry's holds a secret) as `errorMessage`.

use gantry_core::failure::ErrorKind;
use lambda_runtime::Diagnostic;

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
