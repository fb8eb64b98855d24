//! The `gantry` command's library: the local stack (`gantry dev`), signed
//! test deliveries (`gantry send`), bursts of them (`gantry load`), and the pieces the end-to-end tests
//! share with them.

pub mod app;
pub mod build;
pub mod dev;
pub mod git;
pub mod lint;
pub mod load;
pub mod push;
pub mod run;
pub mod send;
pub mod serve;
pub mod sink;
pub mod standin;
