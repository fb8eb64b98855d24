//! What the unit tests of this crate build their cases from: a push of
//! `octo-org/widgets` to `main`.

use crate::events::{BuildSource, ChangedPaths, RepositoryRef, Trigger};

pub fn push_source() -> BuildSource {
    BuildSource {
        trigger: Trigger::Push,
        repository: RepositoryRef {
            full_name: "octo-org/widgets".into(),
            owner: "octo-org".into(),
            name: "widgets".into(),
            clone_url: "https://github.com/octo-org/widgets.git".into(),
            html_url: "https://github.com/octo-org/widgets".into(),
            default_branch: Some("main".into()),
            private: false,
        },
        commit_sha: "9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070".into(),
        git_ref: "refs/heads/main".into(),
        branch: Some("main".into()),
        tag: None,
        pull_request: None,
        fork: false,
        pusher: None,
        sender: None,
        head_commit: None,
        changed_paths: ChangedPaths::default(),
        compare_url: Some("https://github.com/octo-org/widgets/compare/a...b".into()),
        signed_at_ms: 0,
        received_at_ms: 0,
    }
}
