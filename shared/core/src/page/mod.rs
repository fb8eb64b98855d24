//! The build page: one build's result and log, readable by whoever holds
//! its link (a capability signed with Gantry's key), without an AWS
//! account. [`link`] signs and checks links, [`log`] reads CodeBuild's
//! markers, [`ansi`] turns a terminal's colours into HTML, [`html`] renders
//! the pages. The build-page function and `gantry dev` serve them.

pub mod ansi;
pub mod html;
pub mod link;
pub mod log;
