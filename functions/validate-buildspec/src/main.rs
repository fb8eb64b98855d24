//! The validate-buildspec Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_aws::AwsTimeouts;
use gantry_aws::lambda::{diagnostic, serve};
use gantry_core::events::{BuildRequested, Envelope};
use gantry_validate_buildspec::{Settings, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        AwsTimeouts::SHORT,
        Settings::from_env,
        Settings::deps,
        |deps, event: Envelope<BuildRequested>, _| async move {
            // An error fails the invocation, and EventBridge retries it.
            handle(deps, event.detail)
                .await
                .map(|_| ())
                .map_err(diagnostic)
        },
    )
    .await
}
