//! The pipeline-action Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use std::convert::Infallible;

use aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent;
use gantry_aws::AwsTimeouts;
use gantry_aws::lambda::{diagnostic, serve};
use gantry_pipeline_action::{Deps, handle};
use tokio::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Built to abort on panic, a panicking job is still reported.
    gantry_pipeline_action::abort::install();
    serve(
        AwsTimeouts::SHORT,
        |_| Ok::<_, Infallible>(()),
        |(), sdk| Deps {
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            sdk: sdk.clone(),
        },
        |deps, event: CodePipelineJobEvent, deadline| async move {
            // The deadline as an `Instant`, which the job's polling uses.
            let deadline = Instant::now() + deadline.remaining();
            handle(deps, event, deadline)
                .await
                .map(|_| ())
                .map_err(diagnostic)
        },
    )
    .await
}
