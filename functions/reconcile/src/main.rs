//! The reconcile Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_core::deadline::Deadline;
use gantry_reconcile::{Settings, reconcile_until};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    gantry_aws::logging::init();
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let sdk = gantry_aws::load_sdk_config(gantry_aws::AwsTimeouts::LONG).await?;
    let deps = settings.deps(&sdk);
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            reconcile_until(deps, Deadline::at_epoch_ms(event.context.deadline))
                .await
                .map(|_| ())
                .map_err(gantry_aws::lambda::diagnostic)
        },
    ))
    .await
}
