//! The reconcile Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_aws::AwsTimeouts;
use gantry_aws::lambda::{diagnostic, serve};
use gantry_reconcile::{Settings, reconcile_until};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        AwsTimeouts::LONG,
        Settings::from_env,
        Settings::deps,
        |deps, _: serde_json::Value, deadline| async move {
            reconcile_until(deps, deadline)
                .await
                .map(|_| ())
                .map_err(diagnostic)
        },
    )
    .await
}
