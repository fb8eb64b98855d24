//! The build-page Lambda's entry point: wiring only.

use gantry_aws::AwsTimeouts;
use gantry_aws::lambda::serve;
use gantry_build_page::{Settings, function_url};
use lambda_runtime::Diagnostic;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        AwsTimeouts::SHORT,
        Settings::from_env,
        Settings::deps,
        // Every request gets a page, a refusal included: never an error.
        |deps, request, _deadline| async move { Ok::<_, Diagnostic>(function_url(deps, request).await) },
    )
    .await
}
