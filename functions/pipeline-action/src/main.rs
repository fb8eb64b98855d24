//! The pipeline-action Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent;
use gantry_pipeline_action::{Deps, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tokio::time::Instant;

/// The invocation's deadline as an `Instant` (Lambda gives epoch millis).
fn deadline(epoch_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let left = u128::from(epoch_ms).saturating_sub(now_ms);
    Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    gantry_aws::logging::init();
    let sdk = gantry_aws::load_sdk_config(gantry_aws::AwsTimeouts::SHORT).await?;
    let deps = Deps {
        codepipeline: aws_sdk_codepipeline::Client::new(&sdk),
        sdk,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CodePipelineJobEvent>| async move {
            let deadline = deadline(event.context.deadline);
            handle(deps, event.payload, deadline)
                .await
                .map(|_| ())
                .map_err(gantry_aws::lambda::diagnostic)
        },
    ))
    .await
}
