//! Gantry's library: the domain logic every function shares, as plain
//! functions over plain types, and thin ports over the AWS clients.
//!
//! It reads like the flow: [`github`] (signature, payloads, normalising),
//! [`config`] and [`trigger`] (which commits build), [`buildspec`] (is the
//! build file valid), [`events`] (the bus
//! contract), [`aws`] (SSM, S3, EventBridge helpers), [`settings`] (a function's
//! environment).

pub mod aws;
pub mod badge;
pub mod buildspec;
pub mod codebuild_events;
pub mod config;
pub mod deadline;
pub mod diagnostic;
pub mod events;
pub mod github;
pub mod hex;
pub mod logging;
pub mod notify;
pub mod settings;
pub mod status;
pub mod time;
pub mod trigger;
pub mod yaml;
