//! CodePipeline executions that run Gantry's invoke action: their state on
//! the source commit. (Being written.)

use crate::handler::{Deps, HandlerError, Report};

pub async fn execution_changed(
    _deps: &Deps,
    _event: &serde_json::Value,
) -> Result<Report, HandlerError> {
    Ok(Report {
        unchanged: Some("CodePipeline executions are not reported yet"),
        ..Report::default()
    })
}
