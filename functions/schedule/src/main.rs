//! The schedule Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_aws::AwsTimeouts;
use gantry_aws::lambda::{diagnostic, serve};
use gantry_schedule::{Settings, Tick, tick_until};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        AwsTimeouts::SHORT,
        Settings::from_env,
        Settings::deps,
        |deps, event: Tick, deadline| async move {
            tick_until(deps, &event, deadline)
                .await
                .map(|_| ())
                .map_err(diagnostic)
        },
    )
    .await
}
