//! The dead-letter path: every commit the webhook accepted ends with a
//! final status, even when a function failed all its retries.
//!
//! An event whose function failed (Lambda's two retries, then the
//! function's on-failure destination) or that EventBridge could not
//! deliver (24 h of retries, then the rule's dead-letter queue) lands in an
//! SQS queue, and build-events consumes those queues:
//! - an upstream event (`Build Requested`, `Buildspec Validated`,
//!   `Secrets Resolved`) becomes an `error` status on its commit saying
//!   which step failed and why, instead of a commit left pending (or
//!   "queued") for ever;
//! - one of build-events' own events is reported again, later.
//!
//! A message that still fails is returned to its queue (partial batch
//! response) and, after the queue's `maxReceiveCount`, parked in
//! `DeadLetterParkingQueue` for a person.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use gantry_core::deadline::Deadline;
use gantry_core::inbound::DeadLetterInput;
use gantry_core::records::Holder;
use gantry_core::status::{self, Unfinished};

use crate::handler::{Deps, HandlerError, handle_input};
use gantry_aws::report::{Report, deliver};

/// What Lambda hands a function for an SQS event source.
#[derive(Debug, Deserialize)]
pub struct SqsBatch {
    #[serde(rename = "Records")]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    pub message_id: String,
    pub body: String,
    #[serde(default)]
    pub message_attributes: HashMap<String, Attribute>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    #[serde(default)]
    pub string_value: Option<String>,
}

/// The partial batch response (`ReportBatchItemFailures`): the messages to
/// return to the queue.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    pub item_identifier: String,
}

/// One dead letter: the EventBridge event that failed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub event: Value,
    pub reason: String,
}

/// Reads a message of either shape: a Lambda on-failure destination record
/// (`requestPayload` is the event, `responsePayload` the error), or the
/// event itself as a rule's dead-letter queue keeps it (the error in the
/// `ERROR_CODE` / `ERROR_MESSAGE` attributes).
pub fn read(record: &SqsRecord) -> Result<DeadLetter, String> {
    let body: Value = serde_json::from_str(&record.body)
        .map_err(|e| format!("message {} is not JSON: {e}", record.message_id))?;
    if let Some(event) = body.get("requestPayload") {
        let response = &body["responsePayload"];
        let reason = response["errorMessage"]
            .as_str()
            .or_else(|| response["errorType"].as_str())
            .or_else(|| body["requestContext"]["condition"].as_str())
            .unwrap_or("the function failed")
            .to_owned();
        let reason = match body["requestContext"]["condition"].as_str() {
            // Too old to retry: the function never got to answer.
            Some("EventAgeExceeded") => format!("not handled in time ({reason})"),
            _ => reason,
        };
        return Ok(DeadLetter {
            event: event.clone(),
            reason,
        });
    }
    if body.get("detail-type").is_some() {
        let attribute = |name: &str| {
            record
                .message_attributes
                .get(name)
                .and_then(|a| a.string_value.clone())
        };
        let reason = attribute("ERROR_MESSAGE")
            .or_else(|| attribute("ERROR_CODE"))
            .unwrap_or_else(|| "EventBridge could not deliver it".to_owned());
        return Ok(DeadLetter {
            event: body,
            reason: format!("not delivered: {reason}"),
        });
    }
    Err(format!(
        "message {} is neither a Lambda failure record nor an event",
        record.message_id
    ))
}

/// Handles one dead letter: an `error` status for an upstream step, or
/// build-events' own event reported again.
pub async fn handle_dead_letter(
    deps: &Deps,
    letter: &DeadLetter,
    deadline: Deadline,
) -> Result<Report, HandlerError> {
    let input =
        DeadLetterInput::read(&letter.event).map_err(|e| HandlerError::Event(e.to_string()))?;
    let (step, correlation_id, project, source) = match input {
        Some(DeadLetterInput::Requested(e)) => (
            Unfinished::Validation,
            e.correlation_id,
            e.project,
            e.source,
        ),
        Some(DeadLetterInput::Validated(e)) => {
            (Unfinished::Secrets, e.correlation_id, e.project, e.source)
        }
        Some(DeadLetterInput::Resolved(e)) => {
            (Unfinished::Start, e.correlation_id, e.project, e.source)
        }
        Some(DeadLetterInput::Own(own)) => {
            let holder = Holder {
                id: format!("dead-letter@{}", deadline.epoch_ms()),
                deadline,
            };
            return handle_input(deps, &holder, own).await;
        }
        None => {
            return Err(HandlerError::Event(
                "a dead letter that is no event build-events finishes".into(),
            ));
        }
    };
    tracing::warn!(
        correlation_id = %correlation_id,
        repo = %source.repository.full_name,
        commit = %source.commit_sha,
        reason = %letter.reason,
        outcome = "dead_letter",
        "a step failed all its retries; the commit gets an error status"
    );
    let holder = Holder {
        id: format!("dead-letter/{correlation_id}"),
        deadline,
    };
    let verdict = status::unfinished(step, &correlation_id, &letter.reason);
    deliver(
        &deps.reporter,
        &holder,
        &correlation_id,
        &project,
        &source,
        verdict,
        None,
    )
    .await
}

/// Handles a batch from the dead-letter queues; what fails goes back to
/// its queue.
pub async fn handle_batch(deps: &Deps, batch: &SqsBatch, deadline: Deadline) -> BatchResponse {
    let mut response = BatchResponse::default();
    for record in &batch.records {
        let outcome = match read(record) {
            Ok(letter) => handle_dead_letter(deps, &letter, deadline)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            // Unreadable: parked after its receives, for a person.
            Err(e) => Err(e),
        };
        if let Err(reason) = outcome {
            tracing::error!(message_id = %record.message_id, reason, "dead letter not handled; back to its queue");
            response.batch_item_failures.push(ItemFailure {
                item_identifier: record.message_id.clone(),
            });
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: Value, attributes: &[(&str, &str)]) -> SqsRecord {
        SqsRecord {
            message_id: "m-1".into(),
            body: body.to_string(),
            message_attributes: attributes
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        Attribute {
                            string_value: Some((*v).to_owned()),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn both_shapes_of_dead_letter_are_read() {
        let event = serde_json::json!({"source": "gantry", "detail-type": "Secrets Resolved", "detail": {}});
        let lambda = record(
            serde_json::json!({
                "version": "1.0",
                "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
                "requestPayload": event,
                "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
                "responsePayload": {"errorMessage": "CodeBuild StartBuild failed: request timed out", "errorType": "HandlerError"},
            }),
            &[],
        );
        let letter = read(&lambda).expect("read");
        assert_eq!(letter.event, event);
        assert_eq!(
            letter.reason,
            "CodeBuild StartBuild failed: request timed out"
        );
        let rule = record(
            event.clone(),
            &[
                ("ERROR_CODE", "SDK_CLIENT_ERROR"),
                ("ERROR_MESSAGE", "Lambda throttled"),
            ],
        );
        assert_eq!(
            read(&rule).expect("read").reason,
            "not delivered: Lambda throttled"
        );
        assert!(read(&record(serde_json::json!({"x": 1}), &[])).is_err());
    }
}
