//! A panic still fails the job when the binary aborts on panic.
//!
//! Built with `panic = "unwind"`, a panic in the work ends its task and
//! [`crate::handle_with`] reports the failure. Built with `panic = "abort"`
//! (smaller binaries; what cargo-lambda builds unless told otherwise), the
//! process ends in the panic hook and nothing after it runs: CodePipeline
//! would wait for the action's timeout. So, in such a build, the hook
//! [`install`] sets reports the job in hand as failed before the process
//! goes: on a thread of its own, with a runtime and an HTTP connection pool
//! of its own (the process's runtime is the panicking thread, stopped in the
//! hook, and its pooled connections are driven by it).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::handler::{ReportError, Verdict, report};

/// The message CodePipeline shows for a job whose work panicked, whichever
/// way the binary handles a panic.
pub const PANIC_MESSAGE: &str =
    "Gantry's buildspec validation failed unexpectedly (internal error); see the function's log";

/// The longest the hook waits for CodePipeline when the deadline allows it.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The job whose work is running: what the hook reports.
#[derive(Clone)]
struct InHand {
    job_id: String,
    codepipeline: aws_sdk_codepipeline::Client,
    deadline: Instant,
}

tokio::task_local! {
    // Set while the work's future is polled, so a panic in it (the hook
    // runs in the panicking poll) finds its own job, and no other.
    static IN_HAND: InHand;
}

/// Runs `work` with `job_id` in hand: a panic in it, in a binary that aborts
/// on panic, reports the job failed through `codepipeline`'s configuration
/// (on a connection pool of its own) before `deadline`.
pub fn holding<F: Future>(
    job_id: &str,
    codepipeline: &aws_sdk_codepipeline::Client,
    deadline: Instant,
    work: F,
) -> impl Future<Output = F::Output> + use<F> {
    let job = InHand {
        job_id: job_id.to_owned(),
        codepipeline: codepipeline.clone(),
        deadline,
    };
    IN_HAND.scope(job, work)
}

/// Installs the hook, in a binary that aborts on panic (and nowhere else:
/// an unwinding binary reports from [`crate::handle_with`]). The previous
/// hook (the panic's message on stderr) runs first.
pub fn install() {
    if cfg!(panic = "abort") {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let _ = report_in_hand();
        }));
    }
}

/// Reports the job in hand, if any, as failed, and waits for CodePipeline's
/// answer: what the hook does, in the panicking poll, which blocks the
/// runtime. `None` outside [`holding`]'s work.
pub fn report_in_hand() -> Option<Result<(), ReportError>> {
    let job = IN_HAND.try_with(InHand::clone).ok()?;
    tracing::error!(
        job_id = job.job_id,
        "buildspec validation panicked; reporting the job failed before the process aborts"
    );
    let outcome = std::thread::scope(|scope| {
        scope
            .spawn(|| report_from_own_runtime(&job))
            .join()
            .unwrap_or_else(|_| {
                Err(ReportError::Report {
                    job_id: job.job_id.clone(),
                    reason: "the report itself panicked".into(),
                })
            })
    });
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "the panicked job could not be reported");
    }
    Some(outcome)
}

fn report_from_own_runtime(job: &InHand) -> Result<(), ReportError> {
    let fail = |reason: String| ReportError::Report {
        job_id: job.job_id.clone(),
        reason,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("no runtime to report on: {e}")))?;
    // A fresh connection pool: the process's pooled connections belong to
    // the runtime stopped in the hook.
    let codepipeline = aws_sdk_codepipeline::Client::from_conf(
        job.codepipeline
            .config()
            .to_builder()
            .http_client(gantry_aws::tls::sdk_http_client())
            .build(),
    );
    let wait = job
        .deadline
        .saturating_duration_since(Instant::now())
        .min(REPORT_TIMEOUT);
    let verdict = Verdict::Failure {
        message: PANIC_MESSAGE.into(),
    };
    runtime.block_on(async {
        tokio::time::timeout(wait, report(&codepipeline, &job.job_id, &verdict))
            .await
            .map_err(|_| {
                fail(format!(
                    "CodePipeline did not answer within {} ms",
                    wait.as_millis()
                ))
            })?
    })
}
