//! The start-build Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_aws::AwsTimeouts;
use gantry_aws::lambda::{diagnostic, serve};
use gantry_core::events::{Envelope, SecretsResolved};
use gantry_start_build::{Settings, handle_until};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        AwsTimeouts::LONG,
        Settings::from_env,
        Settings::deps,
        |deps, event: Envelope<SecretsResolved>, deadline| async move {
            // An error fails the invocation, and EventBridge retries it;
            // the start record makes the retry start nothing twice.
            handle_until(deps, event.detail, deadline)
                .await
                .map(|_| ())
                .map_err(diagnostic)
        },
    )
    .await
}
