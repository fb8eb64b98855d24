//! The webhook Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_aws::AwsTimeouts;
use gantry_aws::lambda::serve;
use gantry_webhook::{Settings, function_url};
use lambda_runtime::Diagnostic;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        AwsTimeouts::WEBHOOK,
        Settings::from_env,
        Settings::deps,
        // Every request gets an answer, a refusal included: never an error.
        |deps, request, deadline| async move {
            Ok::<_, Diagnostic>(function_url(deps, request, deadline).await)
        },
    )
    .await
}
