//! Watching the bus: a rule on the bus `gantry` whose target is an SQS
//! queue (a tap), and every event the rules routed, as it arrives.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use gantry_aws::describe_sdk_error;

use crate::stack::TappedRule;

/// A step of making, reading or removing a tap failed.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {reason}")]
pub struct TapError {
    /// What was being done, e.g. `create queue gantry-dev-EventLogRule`.
    pub action: String,
    pub reason: String,
}

impl TapError {
    /// What an SDK call made for `action` failed with, in one line.
    fn sdk<E>(action: impl Into<String>) -> impl FnOnce(SdkError<E, HttpResponse>) -> TapError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let action = action.into();
        move |e| TapError {
            reason: describe_sdk_error(&e),
            action,
        }
    }

    fn new(action: impl Into<String>, reason: impl Into<String>) -> TapError {
        TapError {
            action: action.into(),
            reason: reason.into(),
        }
    }
}

/// What a tap is made of.
#[derive(Debug, Clone, Copy)]
pub struct TapSpec<'a> {
    /// The bus the rule is on: `names::BUS`, or `default` where AWS
    /// services send their events.
    pub bus: &'a str,
    /// The queue the events land in, created if it does not exist.
    pub queue: &'a str,
    /// The rule put on the bus.
    pub rule: &'a str,
    /// The id of the queue among the rule's targets.
    pub target_id: &'a str,
    /// The rule's event pattern.
    pub pattern: &'a serde_json::Value,
}

/// A rule on a bus and the SQS queue it delivers to.
#[derive(Debug, Clone)]
pub struct Tap {
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    bus: String,
    rule: String,
    target_id: String,
    queue_url: String,
}

impl Tap {
    /// Creates the queue, then puts the rule with the queue as its target.
    /// When the rule cannot be put, what was made is removed again.
    pub async fn create(sdk: &SdkConfig, spec: TapSpec<'_>) -> Result<Tap, TapError> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name(spec.queue)
            .send()
            .await
            .map_err(TapError::sdk(format!("create queue {}", spec.queue)))?
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let tap = Tap {
            events: aws_sdk_eventbridge::Client::new(sdk),
            sqs,
            bus: spec.bus.to_owned(),
            rule: spec.rule.to_owned(),
            target_id: spec.target_id.to_owned(),
            queue_url,
        };
        if let Err(e) = tap.subscribe(spec.queue, spec.pattern).await {
            tap.remove().await;
            return Err(e);
        }
        Ok(tap)
    }

    async fn subscribe(&self, queue: &str, pattern: &serde_json::Value) -> Result<(), TapError> {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(TapError::sdk(format!("get queue {queue}")))?;
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| TapError::new(format!("get queue {queue}"), "the queue has no ARN"))?;
        self.events
            .put_rule()
            .name(&self.rule)
            .event_bus_name(&self.bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .map_err(TapError::sdk(format!("put rule {}", self.rule)))?;
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id(&self.target_id)
            .arn(arn)
            .build()
            .map_err(|e| TapError::new("rule target", e.to_string()))?;
        self.events
            .put_targets()
            .rule(&self.rule)
            .event_bus_name(&self.bus)
            .targets(target)
            .send()
            .await
            .map_err(TapError::sdk(format!("put targets {}", self.rule)))?;
        Ok(())
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Receives what the queue holds (long-polling up to `wait`, whole
    /// seconds) and deletes it; returns the events whose delete succeeded.
    /// A message whose delete failed comes back after the visibility
    /// timeout and is returned then, so nothing is returned twice.
    pub async fn receive(&self, wait: Duration) -> Result<Vec<serde_json::Value>, TapError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(1))
            .send()
            .await
            .map_err(TapError::sdk("receive"))?;
        let mut events = Vec::new();
        let mut entries = Vec::new();
        for message in received.messages() {
            let Some(handle) = message.receipt_handle() else {
                continue;
            };
            let id = events.len().to_string();
            let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                .id(&id)
                .receipt_handle(handle)
                .build()
            else {
                continue;
            };
            let event = serde_json::from_str(message.body().unwrap_or_default())
                .unwrap_or(serde_json::Value::Null);
            events.push(Some(event));
            entries.push(entry);
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let deleted = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(TapError::sdk("delete"))?;
        Ok(deleted
            .successful()
            .iter()
            .filter_map(|ok| ok.id().parse::<usize>().ok())
            .filter_map(|i| events.get_mut(i).and_then(Option::take))
            .collect())
    }

    /// Takes the queue away from the rule: the bus stops delivering to it.
    pub async fn untarget(&self) -> Result<(), TapError> {
        self.events
            .remove_targets()
            .rule(&self.rule)
            .event_bus_name(&self.bus)
            .ids(&self.target_id)
            .send()
            .await
            .map_err(TapError::sdk(format!(
                "remove the targets of {}",
                self.rule
            )))?;
        Ok(())
    }

    /// Removes the target, the rule and the queue, as far as it can.
    pub async fn remove(&self) {
        let _ = self.untarget().await;
        let _ = self
            .events
            .delete_rule()
            .name(&self.rule)
            .event_bus_name(&self.bus)
            .send()
            .await;
        let _ = self
            .sqs
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await;
    }
}

/// An event as it came out of a rule's queue.
#[derive(Debug, Clone)]
pub struct Observed {
    pub rule: String,
    /// The logical ids of the rule's targets in the template.
    pub targets: Vec<String>,
    /// `gantry`, or the AWS service's (`aws.codebuild`).
    pub source: String,
    pub detail_type: String,
    pub detail: serde_json::Value,
}

impl Observed {
    /// One line for a person watching `gantry dev`.
    pub fn summary(&self) -> String {
        let d = &self.detail;
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        if self.source == gantry_core::codebuild_events::SOURCE {
            // CodeBuild's own: the build and where it is.
            return format!(
                "[{}] {} {} {} {}",
                self.rule,
                self.detail_type,
                gantry_core::ids::BuildArn::from(s(&d["build-id"]).as_str()).id(),
                s(&d["build-status"]),
                s(&d["current-phase"]),
            );
        }
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
            if d["buildspec"]["secrets_removed"] == true {
                line.push_str(" (secret references removed)");
            }
        }
        line
    }
}

/// Receives what is waiting on each rule's queue (long-polling up to
/// `wait`, all queues at once: one slow hop of the chain costs one wait,
/// not one per rule) and deletes it.
pub async fn drain(rules: &[TappedRule], wait: Duration) -> Vec<Observed> {
    let polls: Vec<_> = rules
        .iter()
        .map(|tapped| {
            let tap = tapped.tap.clone();
            tokio::spawn(async move {
                match tap.receive(wait).await {
                    Ok(events) => events,
                    Err(_) => {
                        // Do not spin on a failing endpoint: `gantry dev`
                        // calls this in a loop, and under load a hot loop of
                        // failed receives only adds to what made moto fail.
                        tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
                        Vec::new()
                    }
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for (tapped, poll) in rules.iter().zip(polls) {
        let events = poll.await.unwrap_or_default();
        out.extend(events.into_iter().map(|event| Observed {
            rule: tapped.rule.logical_id.clone(),
            targets: tapped.rule.targets.clone(),
            source: event["source"].as_str().unwrap_or_default().to_owned(),
            detail_type: event["detail-type"].as_str().unwrap_or_default().to_owned(),
            detail: event["detail"].clone(),
        }));
    }
    out
}
