//! The webhook Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_webhook::{Settings, function_url};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    gantry_aws::logging::init();
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let sdk = gantry_aws::load_sdk_config(gantry_aws::AwsTimeouts::WEBHOOK).await?;
    let deps = settings.deps(&sdk);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        let deadline = gantry_core::deadline::Deadline::at_epoch_ms(event.context.deadline);
        Ok::<_, Error>(function_url(deps, event.payload, deadline).await)
    }))
    .await
}
