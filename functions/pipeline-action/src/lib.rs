//! The CodePipeline invoke action: the buildspec in the source artifact is
//! validated before the CodeBuild stage spends a machine on it.
//!
//! CodePipeline waits for PutJobSuccessResult or PutJobFailureResult until
//! the action times out, so this function reports on every path: a
//! validation failure, a missing file, an error reading the artifact, a
//! panic in the work, and a Lambda deadline about to hit. The event carries
//! temporary artifact credentials and is never logged.

pub mod abort;
pub mod artifact;
pub mod handler;

pub use handler::{Deps, Verdict, evaluate, handle, handle_with};
