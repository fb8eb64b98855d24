//! Gantry's core: the decisions, over plain types, with no AWS SDK, no HTTP
//! client and no async runtime, so that every one of them can be tested
//! (and fuzzed) without any I/O.
//!
//! It reads like the flow: [`github`] (the webhook's signature, payloads,
//! normalising), [`config`] and [`trigger`] (which commits build),
//! [`buildspec`] (is the build file valid), [`events`] (the bus contract),
//! [`status`] (what each moment of a build says on GitHub), [`notify`]
//! (what chat is told), [`records`] (what is remembered, and the keys of
//! effects carried out once), [`badge`]. `gantry-aws` carries them out.

pub mod aggregate;
pub mod badge;
pub mod buildspec;
pub mod codebuild_events;
pub mod config;
pub mod deadline;
pub mod diagnostic;
pub mod events;
pub mod exported;
pub mod failure;
#[cfg(test)]
mod fixtures;
pub mod github;
pub mod hex;
pub mod ids;
pub mod inbound;
pub mod notify;
pub mod page;
pub mod pipeline_events;
pub mod records;
pub mod report;
pub mod schedule;
pub mod settings;
pub mod status;
pub mod test_reports;
pub mod time;
pub mod trigger;
pub mod webhook;
pub mod yaml;
