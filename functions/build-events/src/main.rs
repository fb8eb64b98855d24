//! The build-events Lambda's entry point: wiring only. It is invoked with
//! EventBridge events (Gantry's, CodeBuild's, CodePipeline's) and with SQS
//! batches from the dead-letter queues.
#![recursion_limit = "256"]

use gantry_build_events::dead_letters::{SqsBatch, handle_batch};
use gantry_build_events::{Settings, handle_event_until};
use gantry_core::deadline::Deadline;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    gantry_aws::logging::init();
    let settings = Settings::from_env(|name| std::env::var(name).ok())?;
    let sdk = gantry_aws::load_sdk_config(gantry_aws::AwsTimeouts::LONG).await?;
    let deps = settings.deps(&sdk);
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = Deadline::at_epoch_ms(event.context.deadline);
            if event.payload.get("Records").is_some() {
                // The dead-letter queues: what fails goes back to its queue.
                let batch: SqsBatch =
                    serde_json::from_value(event.payload).map_err(|e| Diagnostic {
                        error_type: "build-events.UnreadableBatch".into(),
                        error_message: e.to_string(),
                    })?;
                let response = handle_batch(deps, &batch, deadline).await;
                return Ok::<_, Diagnostic>(serde_json::json!(response));
            }
            // An error fails the invocation, and EventBridge retries it;
            // what was already done is claimed and is not done twice.
            handle_event_until(deps, &event.payload, deadline)
                .await
                .map_err(gantry_aws::lambda::diagnostic)?;
            Ok(serde_json::Value::Null)
        },
    ))
    .await
}
