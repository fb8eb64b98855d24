//! Check runs against a loopback GitHub (wiremock): the exact bodies of a
//! run created queued and completed as a failure, and annotations past 50
//! sent in further batches of 50, each with the output's title and summary.

use gantry_aws::github::checks::CheckRun;
use gantry_aws::github::contents::GitHubClient;
use gantry_aws::secrets::Secret;
use gantry_core::github::checks::{
    Annotation, AnnotationLevel, CheckState, CheckStatus, Conclusion, actions, buttons, state,
};
use gantry_core::notify::BuildResult;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const TOKEN: &str = "ghs_installation0000000000000000000000";

fn annotation(line: u32) -> Annotation {
    Annotation {
        path: "buildspec.yml".into(),
        start_line: line,
        end_line: line,
        start_column: None,
        end_column: None,
        annotation_level: AnnotationLevel::Warning,
        message: format!("warning {line}"),
        title: None,
    }
}

fn annotations_json(lines: std::ops::RangeInclusive<u32>) -> serde_json::Value {
    lines
        .map(|l| {
            json!({"path": "buildspec.yml", "start_line": l, "end_line": l,
                   "annotation_level": "warning", "message": format!("warning {l}")})
        })
        .collect()
}

#[tokio::test]
async fn a_run_is_created_with_its_first_50_annotations_and_the_rest_follow_in_fifties() {
    let github = MockServer::start().await;
    let queued = CheckState {
        status: CheckStatus::Queued,
        conclusion: None,
    };
    Mock::given(method("POST"))
        .and(path("/repos/octo-org/widgets/check-runs"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(body_json(json!({
            "name": "gantry/widgets",
            "head_sha": SHA,
            "status": "queued",
            "external_id": "d1",
            "details_url": "https://builds.example.com/d1",
            "output": {
                "title": "queued",
                "summary": "**queued**",
                "annotations": annotations_json(1..=50),
            },
            "actions": [{"label": "Cancel", "description": "Stop this build", "identifier": "gantry-cancel"}],
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 4242})))
        .expect(1)
        .mount(&github)
        .await;
    for batch in [51..=100, 101..=120] {
        Mock::given(method("PATCH"))
            .and(path("/repos/octo-org/widgets/check-runs/4242"))
            .and(body_json(json!({
                "output": {
                    "title": "queued",
                    "summary": "**queued**",
                    "annotations": annotations_json(batch),
                }
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 4242})))
            .expect(1)
            .mount(&github)
            .await;
    }
    let notes: Vec<Annotation> = (1..=120).map(annotation).collect();
    let id = GitHubClient::new(&github.uri())
        .create_check_run(
            "octo-org/widgets",
            &CheckRun {
                name: "gantry/widgets",
                head_sha: SHA,
                state: queued,
                external_id: "d1",
                details_url: Some("https://builds.example.com/d1"),
                title: "queued",
                summary: "**queued**",
                text: None,
                annotations: &notes,
                actions: &buttons(queued),
            },
            &Secret::new(TOKEN),
        )
        .await
        .expect("created");
    assert_eq!(id, 4242);
}

#[tokio::test]
async fn a_failed_build_completes_its_run_with_the_log_and_no_buttons() {
    let github = MockServer::start().await;
    let failed = state(BuildResult::Failed, None, false);
    assert_eq!(failed.conclusion, Some(Conclusion::Failure));
    Mock::given(method("PATCH"))
        .and(path("/repos/octo-org/widgets/check-runs/4242"))
        .and(body_json(json!({
            "name": "gantry/widgets",
            "status": "completed",
            "conclusion": "failure",
            "external_id": "gantry-widgets:7f1c",
            "output": {
                "title": "failed in BUILD after 2m 05s",
                "summary": "**failed in BUILD after 2m 05s**",
                "text": "The log of BUILD:\n\n```text\nFAIL\n```\n",
            },
            "actions": [],
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 4242})))
        .expect(1)
        .mount(&github)
        .await;
    GitHubClient::new(&github.uri())
        .update_check_run(
            "octo-org/widgets",
            4242,
            &CheckRun {
                name: "gantry/widgets",
                head_sha: SHA,
                state: failed,
                external_id: "gantry-widgets:7f1c",
                // Not a web link: left out rather than refused by GitHub.
                details_url: Some("file:///tmp/log"),
                title: "failed in BUILD after 2m 05s",
                summary: "**failed in BUILD after 2m 05s**",
                text: Some("The log of BUILD:\n\n```text\nFAIL\n```\n"),
                annotations: &[],
                actions: &buttons(failed),
            },
            &Secret::new(TOKEN),
        )
        .await
        .expect("updated");
    assert!(buttons(failed).is_empty());
    assert_eq!(
        buttons(state(BuildResult::Queued, None, true)),
        [actions::APPROVE]
    );
}
