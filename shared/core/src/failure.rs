//! Errors that say what kind they are. A function's failure reaches Lambda
//! as an `errorType` and an `errorMessage`, which the console, the
//! dead-letter records (`responsePayload`) and an alarm's filter show: the
//! kind tells a person (or a filter) at once whether GitHub was down, a
//! claim was busy or an event was malformed, where a Rust type name would
//! not.

/// An error with a kind: `<function>.<Kind>`, e.g.
/// `start-build.CodeBuildUnavailable`.
pub trait ErrorKind: std::error::Error {
    fn kind(&self) -> &'static str;
}
