//! GitHub's REST API: a file at a commit, commit statuses, a person's
//! permission. The API base is configurable (`GITHUB_API_URL`, as GitHub's
//! own runners name it) for GitHub Enterprise Server and for tests.

pub mod app;
pub mod checks;
pub mod contents;
pub mod credentials;
pub mod deliveries;
pub mod permissions;
pub mod repos;
pub mod statuses;
