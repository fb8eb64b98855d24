//! Publishing Gantry's events on its EventBridge bus.

use super::describe_sdk_error;
use crate::on_first_use::OnFirstUse;
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

/// One event, serialised and checked against EventBridge's entry limit.
#[derive(Debug, Clone)]
pub struct Entry {
    detail_type: &'static str,
    json: String,
}

impl Entry {
    pub fn new<D: Detail>(detail: &D) -> Result<Entry, PublishError> {
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
        Ok(Entry {
            detail_type: D::DETAIL_TYPE,
            json,
        })
    }
}

/// PutEvents takes at most this many entries.
pub const MAX_BATCH: usize = 10;

pub struct EventBus {
    client: OnFirstUse<aws_sdk_eventbridge::Client>,
    name: String,
}

impl EventBus {
    /// With a client made now, or made on the first publish
    /// ([`OnFirstUse::new`]) where publishing is a rare path.
    pub fn new(
        client: impl Into<OnFirstUse<aws_sdk_eventbridge::Client>>,
        name: impl Into<String>,
    ) -> Self {
        EventBus {
            client: client.into(),
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes one event and returns its EventBridge id. A partial failure
    /// (`FailedEntryCount` > 0) is an error, not a success with a footnote.
    pub async fn publish<D: Detail>(&self, detail: &D) -> Result<String, PublishError> {
        let ids = self.publish_entries(vec![Entry::new(detail)?]).await?;
        Ok(ids.into_iter().next().unwrap_or_default())
    }

    /// Publishes up to [`MAX_BATCH`] events in one PutEvents call (more go
    /// in several) and returns their ids. Any entry refused is an error: the
    /// caller retries them all, and every consumer takes a repeated event
    /// for the duplicate it is.
    pub async fn publish_entries(&self, entries: Vec<Entry>) -> Result<Vec<String>, PublishError> {
        let mut ids = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(MAX_BATCH) {
            let mut call = self.client.put_events();
            for entry in chunk {
                call = call.entries(
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .event_bus_name(&self.name)
                        .source(SOURCE)
                        .detail_type(entry.detail_type)
                        .detail(entry.json.clone())
                        .build(),
                );
            }
            let out = call.send().await.map_err(|e| PublishError::Unavailable {
                bus: self.name.clone(),
                reason: describe_sdk_error(&e),
            })?;
            let refused = out
                .entries()
                .iter()
                .zip(chunk)
                .find(|(e, _)| e.error_code().is_some());
            if out.failed_entry_count() > 0 || refused.is_some() {
                let (first, detail_type) = match refused {
                    Some((e, entry)) => (Some(e), entry.detail_type),
                    None => (None, chunk.first().map_or("", |e| e.detail_type)),
                };
                return Err(PublishError::Refused {
                    bus: self.name.clone(),
                    detail_type,
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
            ids.extend(
                out.entries()
                    .iter()
                    .map(|e| e.event_id().unwrap_or_default().to_owned()),
            );
        }
        Ok(ids)
    }
}
