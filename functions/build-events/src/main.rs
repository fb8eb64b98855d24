//! The build-events Lambda's entry point: wiring only. It is invoked with
//! EventBridge events (Gantry's, CodeBuild's, CodePipeline's) and with SQS
//! batches from the dead-letter queues.
#![recursion_limit = "256"]

use gantry_aws::AwsTimeouts;
use gantry_aws::lambda::{diagnostic, serve};
use gantry_build_events::dead_letters::{SqsBatch, handle_batch};
use gantry_build_events::{Settings, handle_event_until};
use lambda_runtime::Diagnostic;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        AwsTimeouts::LONG,
        Settings::from_env,
        Settings::deps,
        |deps, payload: serde_json::Value, deadline| async move {
            if payload.get("Records").is_some() {
                // The dead-letter queues: what fails goes back to its queue.
                let batch: SqsBatch = serde_json::from_value(payload).map_err(|e| Diagnostic {
                    error_type: "build-events.UnreadableBatch".into(),
                    error_message: e.to_string(),
                })?;
                let response = handle_batch(deps, &batch, deadline).await;
                return Ok(serde_json::json!(response));
            }
            // An error fails the invocation, and EventBridge retries it;
            // what was already done is claimed and is not done twice.
            handle_event_until(deps, &payload, deadline)
                .await
                .map_err(diagnostic)?;
            Ok(serde_json::Value::Null)
        },
    )
    .await
}
