//! Watching the bus: every event a rule routed to its queue, as it arrives.

use std::time::Duration;

use crate::stack::TappedRule;

/// An event as it came out of a rule's queue.
#[derive(Debug, Clone)]
pub struct Observed {
    pub rule: String,
    /// The logical ids of the rule's targets in the template.
    pub targets: Vec<String>,
    pub detail_type: String,
    pub detail: serde_json::Value,
}

impl Observed {
    /// One line for a person watching `gantry dev`.
    pub fn summary(&self) -> String {
        let d = &self.detail;
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let source = &d["source"];
        let sha = s(&source["commit_sha"]);
        let short = sha.get(..7).unwrap_or(&sha);
        let mut line = format!(
            "[{}] {:<20} {} {} {} project={} correlation_id={}",
            self.rule,
            self.detail_type,
            s(&source["repository"]["full_name"]),
            s(&source["git_ref"]),
            short,
            s(&d["project"]),
            s(&d["correlation_id"]),
        );
        if let Some(reason) = d["reason"]["message"].as_str().or(d["reason"].as_str()) {
            line.push_str(&format!(" reason=\"{reason}\""));
        }
        if let Some(location) = d["buildspec"]["location"].as_str() {
            line.push_str(&format!(" buildspec={location}"));
        }
        line
    }
}

/// Receives what is waiting on each rule's queue (long-polling up to
/// `wait`) and deletes it.
pub async fn drain(
    sqs: &aws_sdk_sqs::Client,
    rules: &[TappedRule],
    wait: Duration,
) -> Vec<Observed> {
    let wait_seconds = i32::try_from(wait.as_secs()).unwrap_or(1);
    let mut out = Vec::new();
    for tapped in rules {
        let received = sqs
            .receive_message()
            .queue_url(&tapped.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await;
        let Ok(received) = received else {
            // Do not spin on a failing endpoint: `gantry dev` calls this in
            // a loop, and under load a hot loop of failed receives only
            // adds to what made moto fail.
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
            continue;
        };
        for message in received.messages() {
            let body = message.body().unwrap_or_default();
            let event: serde_json::Value =
                serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
            out.push(Observed {
                rule: tapped.rule.logical_id.clone(),
                targets: tapped.rule.targets.clone(),
                detail_type: event["detail-type"].as_str().unwrap_or_default().to_owned(),
                detail: event["detail"].clone(),
            });
            if let Some(handle) = message.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(&tapped.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
    out
}
