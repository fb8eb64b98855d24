//! What the unit tests of this crate build their cases from: a push of
//! `octo-org/widgets` to `main`.

use crate::events::{BuildSource, ChangedPaths, RepositoryRef, Trigger};
use crate::records::BuildRecord;

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
        installation_id: None,
        attempt: 1,
        member: None,
        run: None,
        compute: Default::default(),
    }
}

/// The record of a build of `source` that has started, not finished.
pub fn build_record(source: &BuildSource) -> BuildRecord {
    BuildRecord {
        v: 1,
        build_id: "gantry-build:7f1c".into(),
        build_arn: "arn:aws:codebuild:eu-west-1:123456789012:build/gantry-build:7f1c".into(),
        project: "gantry-build".into(),
        correlation_id: "d1".into(),
        source: source.clone(),
        build_url: "https://console.aws.amazon.com/x".into(),
        logs_url: None,
        trusted: true,
        withheld: None,
        secrets: Vec::new(),
        started_at_ms: 0,
        finished: None,
        superseded_by: None,
        buildspec_digest: None,
        buildspec_location: None,
    }
}
