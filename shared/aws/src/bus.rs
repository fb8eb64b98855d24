//! Publishing Gantry's events on its EventBridge bus.

use super::describe_sdk_error;
use gantry_core::events::{Detail, MAX_ENTRY_BYTES, SOURCE, entry_size};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("could not serialise {detail_type}: {reason}")]
    Serialise {
        detail_type: &'static str,
        reason: String,
    },
    #[error("{detail_type} is {size} bytes, over EventBridge's {MAX_ENTRY_BYTES}-byte entry limit")]
    TooLarge {
        detail_type: &'static str,
        size: usize,
    },
    #[error("PutEvents to bus {bus} failed: {reason}")]
    Unavailable { bus: String, reason: String },
    #[error("EventBridge refused {detail_type} on bus {bus}: {code}: {message}")]
    Refused {
        bus: String,
        detail_type: &'static str,
        code: String,
        message: String,
    },
}

pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

impl EventBus {
    pub fn new(client: aws_sdk_eventbridge::Client, name: impl Into<String>) -> Self {
        EventBus {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes one event and returns its EventBridge id. A partial failure
    /// (`FailedEntryCount` > 0) is an error, not a success with a footnote.
    pub async fn publish<D: Detail>(&self, detail: &D) -> Result<String, PublishError> {
        let json = serde_json::to_string(detail).map_err(|e| PublishError::Serialise {
            detail_type: D::DETAIL_TYPE,
            reason: e.to_string(),
        })?;
        let size = entry_size(D::DETAIL_TYPE, &json);
        if size > MAX_ENTRY_BYTES {
            return Err(PublishError::TooLarge {
                detail_type: D::DETAIL_TYPE,
                size,
            });
        }
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(SOURCE)
            .detail_type(D::DETAIL_TYPE)
            .detail(json)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PublishError::Unavailable {
                bus: self.name.clone(),
                reason: describe_sdk_error(&e),
            })?;
        let first = out.entries().first();
        if out.failed_entry_count() > 0 || first.is_some_and(|e| e.error_code().is_some()) {
            return Err(PublishError::Refused {
                bus: self.name.clone(),
                detail_type: D::DETAIL_TYPE,
                code: first
                    .and_then(|e| e.error_code())
                    .unwrap_or("unknown")
                    .to_owned(),
                message: first
                    .and_then(|e| e.error_message())
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        Ok(first
            .and_then(|e| e.event_id())
            .unwrap_or_default()
            .to_owned())
    }
}
