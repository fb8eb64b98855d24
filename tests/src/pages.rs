//! A build page over the local stack: build records and logs as Gantry
//! writes them (S3, CloudWatch Logs in moto), the page key in SSM, and the
//! page served as `gantry dev` serves it.

use std::sync::Arc;

use gantry_aws::pages::{PageLinks, PageSettings};
use gantry_core::codebuild_events::BuildStatus;
use gantry_core::events::{BuildspecLocation, HeadCommit, PullRequestRef, Trigger};
use gantry_core::ids::BuildId;
use gantry_core::page::log::LogPlace;
use gantry_core::records::{BuildRecord, Finished, PhaseTiming};

use crate::LocalStack;

pub const PROJECT: &str = "gantry-dev";

pub struct PageWorld {
    pub local: LocalStack,
    pub settings: gantry_build_page::Settings,
    pub deps: Arc<gantry_build_page::Deps>,
    pub links: PageLinks,
    pub records: gantry_aws::records::Records,
}

impl PageWorld {
    /// The local stack, pages served at `base_url`, with `overrides` of
    /// the page's environment (`PRIVATE_REPOSITORY_PAGES`, …).
    pub async fn start(base_url: &str, overrides: &[(&str, &str)]) -> PageWorld {
        let local = LocalStack::start(&crate::every_push_config("")).await;
        let settings =
            gantry_local::stack::build_page_settings(base_url, overrides).expect("page settings");
        let deps = Arc::new(settings.deps(&local.sdk));
        let links = PageLinks::new(
            PageSettings {
                base_url: base_url.to_owned(),
                ..settings.pages.clone()
            },
            aws_sdk_ssm::Client::new(&local.sdk),
        );
        PageWorld {
            settings: settings.clone(),
            records: gantry_aws::records::Records::new(
                aws_sdk_s3::Client::new(&local.sdk),
                gantry_local::stack::names::BUCKET,
            ),
            local,
            deps,
            links,
        }
    }

    /// The signed link a status would carry to `record`'s page.
    pub async fn link(&self, record: &BuildRecord) -> String {
        self.links
            .build_link(
                &record.build_id,
                &record.source,
                record.trusted,
                false,
                gantry_core::events::now_ms() / 1000,
            )
            .await
            .expect("a key")
            .expect("a page")
    }

    pub async fn put(&self, record: &BuildRecord) {
        self.records
            .put_build(record)
            .await
            .expect("record written");
    }

    /// Appends `lines` to `record`'s log, as CodeBuild writes it (the
    /// stream is made on the first call).
    pub async fn append(&self, record: &BuildRecord, lines: &[String]) {
        let (_, uuid) = record.build_id.parts();
        let place = LogPlace::conventional(PROJECT, uuid, record.trusted);
        crate::put_build_log(&self.local.sdk, &place, lines).await;
    }
}

/// A commit of `octo-org/widgets`' pull request #42 (a contributor's),
/// built: running until [`finish`] is called on it.
pub fn pull_request_build(uuid: &str) -> BuildRecord {
    let sha = "9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070";
    BuildRecord {
        v: 1,
        build_id: BuildId::new(format!("{PROJECT}:{uuid}")),
        build_arn: format!("arn:aws:codebuild:us-east-1:123456789012:build/{PROJECT}:{uuid}")
            .into(),
        project: PROJECT.into(),
        correlation_id: format!("delivery-{uuid}").into(),
        source: gantry_core::events::BuildSource {
            trigger: Trigger::PullRequest,
            repository: gantry_core::events::RepositoryRef {
                full_name: "octo-org/widgets".into(),
                owner: "octo-org".into(),
                name: "widgets".into(),
                clone_url: "https://github.com/octo-org/widgets.git".into(),
                html_url: "https://github.com/octo-org/widgets".into(),
                default_branch: Some("main".into()),
                private: false,
            },
            commit_sha: sha.into(),
            git_ref: "refs/pull/42/head".into(),
            branch: None,
            tag: None,
            pull_request: Some(PullRequestRef {
                number: 42,
                title: "Make the widgets <faster>".into(),
                author: "a-contributor".into(),
                url: "https://github.com/octo-org/widgets/pull/42".into(),
                action: "synchronize".into(),
                base_branch: "main".into(),
                base_sha: "1111111111111111111111111111111111111111".into(),
                head_branch: "faster".into(),
                head_repository: Some("octo-org/widgets".into()),
                draft: false,
                approved_by: None,
                label: None,
            }),
            fork: false,
            pusher: None,
            sender: Some("a-contributor".into()),
            head_commit: Some(HeadCommit {
                message: "Cache the widget table\n\nIt was read on every call.".into(),
                url: None,
            }),
            changed_paths: Default::default(),
            compare_url: None,
            signed_at_ms: 0,
            received_at_ms: 0,
            installation_id: None,
            attempt: 1,
            member: None,
            run: None,
            compute: Default::default(),
        },
        build_url: format!(
            "https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/{PROJECT}/build/{PROJECT}%3A{uuid}/"
        ),
        logs_url: None,
        trusted: true,
        withheld: None,
        secrets: Vec::new(),
        started_at_ms: gantry_core::events::now_ms() - 125_000,
        finished: None,
        superseded_by: None,
        buildspec_digest: Some(
            "sha256:5d41402abc4b2a76b9719d911017c592ae0000000000000000000000000000".into(),
        ),
        buildspec_location: Some(BuildspecLocation::Repository {
            repo: "octo-org/widgets".into(),
            path: "buildspec.yml".into(),
            commit: sha.into(),
        }),
    }
}

/// `record`, ended with `status` (failing in BUILD unless it succeeded).
pub fn finish(record: &mut BuildRecord, status: BuildStatus) {
    let failed = status != BuildStatus::Succeeded;
    let phase = |p: &str, s: &str, d| PhaseTiming {
        phase: p.into(),
        status: Some(s.into()),
        duration_seconds: Some(d),
    };
    record.finished = Some(Finished {
        status,
        finished_at_ms: gantry_core::events::now_ms(),
        duration_seconds: Some(125),
        failed_phase: failed.then(|| "BUILD".into()),
        phases: vec![
            phase("SUBMITTED", "SUCCEEDED", 0),
            phase("PROVISIONING", "SUCCEEDED", 3),
            phase("DOWNLOAD_SOURCE", "SUCCEEDED", 2),
            phase("INSTALL", "SUCCEEDED", 14),
            phase("BUILD", if failed { "FAILED" } else { "SUCCEEDED" }, 104),
            phase("POST_BUILD", "SUCCEEDED", 1),
        ],
        image_uri: (!failed)
            .then(|| "123456789012.dkr.ecr.us-east-1.amazonaws.com/gantry/dev:9f2c1e4".into()),
        layer_cache: Some(gantry_core::exported::LayerCache {
            cached: 6,
            steps: 6,
        }),
        tests: Some({
            let mut t = gantry_core::test_reports::TestResults::default();
            t.add_report([
                ("SUCCEEDED", if failed { 212 } else { 214 }),
                ("SKIPPED", 3),
            ]);
            t.add_report([("SUCCEEDED", 31), ("FAILED", if failed { 2 } else { 0 })]);
            if failed {
                t.add_failed_name("orders::totals_include_tax");
                t.add_failed_name("orders::refund_rounds_down");
            }
            t
        }),
        artifacts: None,
        log: None,
    });
}

/// A failing build's log as CodeBuild writes it: `filler` lines of a test
/// run before the failure in BUILD.
pub fn failing_log(filler: usize) -> Vec<String> {
    let marker = |t: &str| format!("[Container] 2026/12/01 10:00:00.000000 {t}");
    let mut lines = vec![
        marker("Running on CodeBuild On-demand"),
        marker("Entering phase INSTALL"),
        marker("Running command rustup show"),
        "stable-aarch64-unknown-linux-gnu (default)".to_owned(),
        marker("Phase complete: INSTALL State: SUCCEEDED"),
        marker("Entering phase BUILD"),
        marker("Running command cargo test --locked"),
        "   \u{1b}[1m\u{1b}[32mCompiling\u{1b}[0m widgets v0.1.0 (/codebuild/output/src1/src)"
            .to_owned(),
    ];
    lines.extend(
        (0..filler).map(|i| format!("test widgets::case_{i:06} ... \u{1b}[32mok\u{1b}[0m")),
    );
    lines.extend([
        "test widgets::table_is_cached ... \u{1b}[31mFAILED\u{1b}[0m".to_owned(),
        "<script>alert('a log line is text')</script>".to_owned(),
        "\u{1b}[1m\u{1b}[31merror\u{1b}[0m: test failed, to rerun pass `--lib`".to_owned(),
        marker("Command did not exit successfully cargo test --locked exit status 101"),
        marker("Phase complete: BUILD State: FAILED"),
        marker("Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: cargo test --locked. Reason: exit status 101"),
        marker("Entering phase POST_BUILD"),
        marker("Phase complete: POST_BUILD State: SUCCEEDED"),
    ]);
    lines
}
