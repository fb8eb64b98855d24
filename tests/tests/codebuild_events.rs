//! CodeBuild's EventBridge events as AWS publishes them (the corpus's
//! `events/`: the aws-lambda-rust-runtime and aws-lambda-go fixtures, the
//! CodeBuild user guide's samples, a recorded build), read by what
//! build-events will read them with.

use gantry_core::codebuild_events::{
    CodeBuildEvent, PHASE_CHANGE, STATE_CHANGE, parse, parse_value,
};

const SAMPLE_ID: &str = "my-sample-project:8745a7a9-c340-456a-9166-edf953571bEX";
const SAMPLE_ARN: &str = "arn:aws:codebuild:us-west-2:123456789012:build/my-sample-project:8745a7a9-c340-456a-9166-edf953571bEX";
const PHASES: [&str; 11] = [
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
];

fn read(file: &str) -> Vec<u8> {
    let path = gantry_e2e::corpus().join("events").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn event(file: &str) -> CodeBuildEvent {
    parse(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn phase_types(e: &CodeBuildEvent) -> Vec<&str> {
    e.detail
        .additional_information
        .phases
        .iter()
        .map(|p| p.phase_type.as_str())
        .collect()
}

/// Every phase but the last ends SUCCEEDED; COMPLETED has no status.
fn assert_all_succeeded(file: &str, e: &CodeBuildEvent) {
    let phases = &e.detail.additional_information.phases;
    let (last, done) = phases.split_last().expect("phases");
    assert_eq!(last.phase_type, "COMPLETED", "{file}");
    assert_eq!(last.phase_status, None, "{file}");
    assert_eq!(last.duration_in_seconds, None, "{file}");
    assert_eq!(last.end_time, None, "{file}");
    assert!(last.start_time.is_some(), "{file}");
    for p in done {
        assert_eq!(p.phase_status.as_deref(), Some("SUCCEEDED"), "{file}");
        assert!(p.duration_in_seconds.is_some(), "{file}: {p:?}");
    }
    assert_eq!(e.detail.failed_phase(), None, "{file}");
}

fn assert_sample_build(file: &str, e: &CodeBuildEvent) {
    let d = &e.detail;
    assert_eq!(e.region.as_deref(), Some("us-west-2"), "{file}");
    assert_eq!(e.account.as_deref(), Some("123456789012"), "{file}");
    assert_eq!(e.source.as_deref(), Some("aws.codebuild"), "{file}");
    assert_eq!(d.project_name, "my-sample-project", "{file}");
    assert_eq!(d.build_arn, SAMPLE_ARN, "{file}");
    assert_eq!(d.build_id(), SAMPLE_ID, "{file}");
    let info = &d.additional_information;
    assert!(info.build_complete, "{file}");
    assert_eq!(
        info.initiator.as_deref(),
        Some("MyCodeBuildDemoUser"),
        "{file}"
    );
    let logs = info.logs.as_ref().expect("logs");
    assert_eq!(
        logs.group_name.as_deref(),
        Some("/aws/codebuild/my-sample-project")
    );
    assert_eq!(
        logs.stream_name.as_deref(),
        Some("8745a7a9-c340-456a-9166-edf953571bEX")
    );
    assert!(
        logs.deep_link
            .as_deref()
            .is_some_and(|l| l.starts_with("https://console.aws.amazon.com/cloudwatch/")),
        "{file}"
    );
    // 36 provisioning + 4 download + 70 build + 4 finalizing, the rest 0:
    // integers in some files, floats in others.
    assert_eq!(d.duration_seconds(), Some(114), "{file}");
    assert_all_succeeded(file, e);
}

#[test]
fn the_lambda_runtime_fixtures_state_change_with_float_numbers() {
    // The aws-lambda-go copy differs only by its final newline.
    for file in [
        "01_rust_example-codebuild-state-change.json",
        "07_go_codebuild-state-change.json",
    ] {
        let e = event(file);
        assert_eq!(e.detail_type, STATE_CHANGE);
        assert!(e.is_state_change() && !e.is_phase_change());
        assert_eq!(e.time.as_deref(), Some("2017-09-01T16:14:28Z"));
        let d = &e.detail;
        assert_eq!(
            d.build_status.as_ref().map(|s| s.as_str()),
            Some("SUCCEEDED"),
            "{file}"
        );
        assert!(d.is_final(), "{file}");
        assert_eq!(d.current_phase.as_deref(), Some("COMPLETED"), "{file}");
        assert_eq!(d.completed_phase, None, "{file}");
        assert_eq!(phase_types(&e), PHASES, "{file}");
        assert_eq!(d.variable("TEST"), Some("TEST"), "{file}");
        assert_eq!(d.variable("GANTRY_COMMIT"), None, "{file}");
        let env = &d.additional_information.environment;
        assert_eq!(env.image.as_deref(), Some("aws/codebuild/standard:2.0"));
        assert_eq!(env.environment_variables[0].kind, "PLAINTEXT");
        assert_sample_build(file, &e);
    }
}

#[test]
fn the_lambda_runtime_fixture_phase_change_gives_the_completed_phase() {
    let file = "02_rust_example-codebuild-phase-change.json";
    let e = event(file);
    assert_eq!(e.detail_type, PHASE_CHANGE);
    assert!(e.is_phase_change() && !e.is_state_change());
    assert_eq!(e.time.as_deref(), Some("2017-09-01T16:14:21Z"));
    let d = &e.detail;
    assert_eq!(d.build_status, None);
    assert!(!d.is_final(), "a phase change carries no build status");
    assert_eq!(d.current_phase, None);
    assert_eq!(d.completed_phase.as_deref(), Some("COMPLETED"));
    assert_eq!(d.completed_phase_status.as_deref(), Some("SUCCEEDED"));
    assert_eq!(d.completed_phase_duration_seconds, Some(4.0));
    assert_eq!(phase_types(&e), PHASES);
    assert!(
        d.additional_information
            .environment
            .environment_variables
            .is_empty()
    );
    assert_sample_build(file, &e);
}

#[test]
fn the_user_guide_samples_with_integer_numbers() {
    let without_queued: Vec<&str> = PHASES.iter().copied().filter(|p| *p != "QUEUED").collect();

    let file = "09_doc_codebuild_state_change.json";
    let e = event(file);
    assert!(e.is_state_change());
    assert_eq!(
        e.detail.build_status.as_ref().map(|s| s.as_str()),
        Some("SUCCEEDED")
    );
    assert!(e.detail.is_final());
    assert_eq!(e.detail.current_phase.as_deref(), Some("COMPLETED"));
    assert_eq!(phase_types(&e), without_queued);
    assert_eq!(
        e.detail.additional_information.environment.image.as_deref(),
        Some("aws/codebuild/standard:4.0")
    );
    assert_sample_build(file, &e);

    let file = "10_doc_codebuild_phase_change.json";
    let e = event(file);
    assert!(e.is_phase_change());
    assert_eq!(e.detail.build_status, None);
    assert!(!e.detail.is_final());
    assert_eq!(e.detail.completed_phase.as_deref(), Some("COMPLETED"));
    assert_eq!(
        e.detail.completed_phase_status.as_deref(),
        Some("SUCCEEDED")
    );
    assert_eq!(e.detail.completed_phase_duration_seconds, Some(4.0));
    assert_eq!(phase_types(&e), without_queued);
    assert_sample_build(file, &e);
}

#[test]
fn a_recorded_build_from_start_to_success() {
    let started = event("34_recorded_codebuild_state_change_IN_PROGRESS.json");
    let done = event("35_recorded_codebuild_state_change_SUCCEEDED.json");
    for e in [&started, &done] {
        assert!(e.is_state_change());
        assert_eq!(e.region.as_deref(), Some("us-east-1"));
        assert_eq!(e.detail.project_name, "TestProject");
        assert_eq!(
            e.detail.build_id(),
            "TestProject:12345678-1234-1234-1234-1234567890ab"
        );
    }

    let d = &started.detail;
    assert_eq!(
        d.build_status.as_ref().map(|s| s.as_str()),
        Some("IN_PROGRESS")
    );
    assert!(!d.is_final());
    assert_eq!(d.current_phase.as_deref(), Some("SUBMITTED"));
    let info = &d.additional_information;
    assert!(!info.build_complete);
    assert!(info.phases.is_empty());
    assert_eq!(d.duration_seconds(), None);
    let logs = info.logs.as_ref().expect("logs");
    assert_eq!(
        (logs.group_name.as_deref(), logs.stream_name.as_deref()),
        (None, None)
    );
    assert!(
        logs.deep_link
            .as_deref()
            .is_some_and(|l| l.ends_with("group=null;stream=null"))
    );

    let d = &done.detail;
    assert_eq!(
        d.build_status.as_ref().map(|s| s.as_str()),
        Some("SUCCEEDED")
    );
    assert!(d.is_final());
    assert!(d.additional_information.build_complete);
    assert_eq!(phase_types(&done), PHASES);
    // 1 queued + 24 provisioning + 15 download + 11 build + 2 finalizing.
    assert_eq!(d.duration_seconds(), Some(53));
    // `": "` contexts say nothing and are dropped.
    assert!(
        d.additional_information
            .phases
            .iter()
            .all(|p| p.phase_context.is_empty())
    );
    assert_all_succeeded("35", &done);
}

/// Every CodeBuild event in the manifest parses; nothing else in it passes
/// for one (CodePipeline events have no build id, some are not JSON).
#[test]
fn the_manifest_agrees() {
    let manifest = String::from_utf8(read("MANIFEST.tsv")).expect("utf-8");
    let mut codebuild = 0;
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, kind) = (cols[0], cols[1]);
        let result = parse(&read(file));
        if kind.starts_with("CodeBuild ") {
            codebuild += 1;
            let e = result.unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(e.detail_type, kind, "{file}");
            assert!(
                e.detail.build_arn.starts_with("arn:aws:codebuild:"),
                "{file}"
            );
            assert!(!e.detail.project_name.is_empty(), "{file}");
            assert!(
                e.detail.build_status.is_some() || e.is_phase_change(),
                "{file}"
            );
        } else {
            let err = result.expect_err(file);
            assert!(!err.path.is_empty() && !err.message.is_empty(), "{file}");
        }
    }
    assert!(codebuild >= 7, "{codebuild} CodeBuild events in the corpus");
}

#[test]
fn a_codepipeline_event_is_refused_at_its_detail() {
    let err = parse(&read(
        "11_doc_codepipeline_pipeline-started-event-emitted.json",
    ))
    .expect_err("not CodeBuild");
    assert_eq!(err.path, "detail", "{err}");
    assert!(err.message.contains("project-name"), "{err}");
}

#[test]
fn a_parsed_json_value_reads_as_the_bytes_do() {
    for file in [
        "01_rust_example-codebuild-state-change.json",
        "02_rust_example-codebuild-phase-change.json",
        "09_doc_codebuild_state_change.json",
        "10_doc_codebuild_phase_change.json",
    ] {
        let value: serde_json::Value = serde_json::from_slice(&read(file)).expect("JSON");
        assert_eq!(
            parse_value(&value).unwrap_or_else(|e| panic!("{file}: {e}")),
            event(file),
            "{file}"
        );
    }
    let err = parse_value(&serde_json::json!({"detail-type": STATE_CHANGE, "detail": {}}))
        .expect_err("no project");
    assert!(err.to_string().contains("detail"), "{err}");
}
