//! The validate-buildspec Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_core::events::{BuildRequested, Envelope};
use gantry_validate_buildspec::{Settings, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    gantry_aws::logging::init();
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let sdk = gantry_aws::load_sdk_config(gantry_aws::AwsTimeouts::SHORT).await?;
    let deps = settings.deps(&sdk);
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Envelope<BuildRequested>>| async move {
            // An error fails the invocation, and EventBridge retries it.
            handle(deps, event.payload.detail)
                .await
                .map(|_| ())
                .map_err(gantry_aws::lambda::diagnostic)
        },
    ))
    .await
}
