//! The start-build Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use gantry_core::deadline::Deadline;
use gantry_core::events::{Envelope, SecretsResolved};
use gantry_start_build::{Settings, handle_until};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    gantry_aws::logging::init();
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let sdk = gantry_aws::load_sdk_config(gantry_aws::AwsTimeouts::LONG).await?;
    let deps = settings.deps(&sdk);
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Envelope<SecretsResolved>>| async move {
            // An error fails the invocation, and EventBridge retries it;
            // the start record makes the retry start nothing twice.
            let deadline = Deadline::at_epoch_ms(event.context.deadline);
            handle_until(deps, event.payload.detail, deadline)
                .await
                .map(|_| ())
                .map_err(gantry_aws::lambda::diagnostic)
        },
    ))
    .await
}
