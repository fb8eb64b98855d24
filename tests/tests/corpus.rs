//! Every real delivery in the corpus through the webhook handler's pure
//! part: the right answer, and for push / pull_request an event that
//! round-trips through serde and fits EventBridge.

use gantry_core::config::Config;
use gantry_core::events::{
    BuildRequested, BuildSkipped, CheckRequest, CheckRunRequested, MAX_ENTRY_BYTES, SkipCode,
    entry_size,
};
use gantry_core::webhook::{Assessment, DEFAULT_MAX_BODY_BYTES, Publication, Summary, process};
use gantry_e2e::{SECRET, corpus_file, corpus_webhooks, github_headers};
use http::HeaderValue;

fn run(config: &Config, event: &str, body: &[u8]) -> Assessment {
    let headers = github_headers(event, "72d3162e-cc78-11e3-81ab-4c9367dc0958", body, SECRET);
    process(
        &[SECRET],
        config,
        &headers,
        body,
        DEFAULT_MAX_BODY_BYTES,
        &mut Summary::default(),
    )
}

fn reply(a: &Assessment) -> (u16, serde_json::Value) {
    match a {
        Assessment::Reply(r) => (
            r.status,
            serde_json::from_str(&r.body).expect("reply is JSON"),
        ),
        Assessment::Publish { .. } => panic!("expected a reply, got a publication"),
    }
}

fn publication(a: Assessment) -> Publication {
    match a {
        Assessment::Publish { publication, .. } => *publication,
        Assessment::Reply(r) => panic!("expected a publication, got {} {}", r.status, r.body),
    }
}

/// Serialises, checks the size, deserialises and compares.
fn round_trip(p: &Publication) {
    match p {
        Publication::Requested(e) => {
            let json = serde_json::to_string(e).expect("serialise");
            assert!(
                entry_size("Build Requested", &json) < MAX_ENTRY_BYTES / 3,
                "{} bytes",
                json.len()
            );
            let back: BuildRequested = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(&back, e);
        }
        Publication::Skipped(e) => {
            let json = serde_json::to_string(e).expect("serialise");
            assert!(
                entry_size("Build Skipped", &json) < MAX_ENTRY_BYTES / 3,
                "{} bytes",
                json.len()
            );
            let back: BuildSkipped = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(&back, e);
        }
        Publication::CheckRun(e) => {
            let json = serde_json::to_string(e).expect("serialise");
            let back: CheckRunRequested = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(&back, e);
        }
        Publication::Members(items) => items.iter().for_each(round_trip),
    }
}

const RESTRICTIVE: &str = "\
version: 1
repositories:
  - name: Codertocat/*
    project: hello-build
    push:
      branches: ['release/*']
    pull-request:
      branches: [develop]
";

#[test]
fn every_corpus_delivery_gets_the_right_answer() {
    let dev = Config::dev();
    let deliveries = corpus_webhooks();
    assert!(
        deliveries.len() >= 20,
        "corpus has {} deliveries",
        deliveries.len()
    );
    for d in deliveries {
        let outcome = run(&dev, &d.event, &d.body);
        let name = &d.file;
        match (d.event.as_str(), d.action.as_str()) {
            ("ping", _) => {
                let (status, body) = reply(&outcome);
                assert_eq!(status, 200, "{name}");
                assert_eq!(body["hook_id"], 109_948_940, "{name}");
            }
            ("push", _) => {
                let payload: serde_json::Value =
                    serde_json::from_slice(&d.body).expect("corpus JSON");
                if payload["deleted"] == true {
                    let (status, body) = reply(&outcome);
                    assert_eq!(status, 202, "{name}");
                    assert!(
                        body["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains("deletion")),
                        "{name}: {body}"
                    );
                } else {
                    let p = publication(outcome);
                    let Publication::Requested(e) = &p else {
                        panic!("{name}: {p:?}")
                    };
                    assert_eq!(
                        e.source.commit_sha,
                        payload["after"].as_str().unwrap_or_default(),
                        "{name}"
                    );
                    assert_eq!(e.project, "gantry-dev");
                    assert_eq!(e.correlation_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
                    round_trip(&p);
                }
            }
            ("pull_request", "opened" | "synchronize" | "reopened" | "ready_for_review") => {
                let p = publication(outcome);
                let Publication::Requested(e) = &p else {
                    panic!("{name}: {p:?}")
                };
                let pr = e.source.pull_request.as_ref().expect("pull request fields");
                assert_eq!(pr.number, 2, "{name}");
                assert_eq!(pr.author, "Codertocat", "{name}");
                assert!(!e.source.fork, "{name}: same-repository head is not a fork");
                round_trip(&p);
            }
            ("pull_request", action) => {
                let (status, body) = reply(&outcome);
                assert_eq!(status, 202, "{name}");
                assert!(
                    body["reason"].as_str().is_some_and(|r| r.contains(action)),
                    "{name}: {body}"
                );
            }
            // Re-run all: which runs are Gantry's is build-events' to ask.
            ("check_suite", "rerequested") => {
                let p = publication(outcome);
                assert!(matches!(p, Publication::CheckRun(_)), "{name}: {p:?}");
                round_trip(&p);
            }
            // GitHub's samples carry no Gantry external id: nothing of
            // Gantry's to re-run or press (see the test below).
            ("check_run" | "check_suite", _) => {
                let (status, body) = reply(&outcome);
                assert_eq!(status, 202, "{name}");
                assert_eq!(body["outcome"], "ignored", "{name}: {body}");
            }
            (event, _) => {
                let (status, body) = reply(&outcome);
                assert_eq!(status, 202, "{name}");
                assert_eq!(body["reason"], format!("ignored: {event}"), "{name}");
            }
        }
    }
}

#[test]
fn form_encoded_deliveries_get_the_same_answers() {
    let dev = Config::dev();
    for d in corpus_webhooks() {
        let encoded = form_urlencoded_payload(&d.body);
        let mut headers = github_headers(
            &d.event,
            "6f1c9a10-0000-4000-8000-000000000001",
            &encoded,
            SECRET,
        );
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let form = process(
            &[SECRET],
            &dev,
            &headers,
            &encoded,
            DEFAULT_MAX_BODY_BYTES,
            &mut Summary::default(),
        );
        let json = {
            let headers = github_headers(
                &d.event,
                "6f1c9a10-0000-4000-8000-000000000001",
                &d.body,
                SECRET,
            );
            process(
                &[SECRET],
                &dev,
                &headers,
                &d.body,
                DEFAULT_MAX_BODY_BYTES,
                &mut Summary::default(),
            )
        };
        assert_eq!(form, json, "{}", d.file);
    }
}

fn form_urlencoded_payload(body: &[u8]) -> Vec<u8> {
    let mut out = b"payload=".to_vec();
    for &b in body {
        if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) {
            out.push(b);
        } else if b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

#[test]
fn rules_turn_corpus_pushes_and_pull_requests_into_skips_with_reasons() {
    let (config, _) = Config::parse(RESTRICTIVE).expect("valid");
    let p = publication(run(
        &config,
        "push",
        &corpus_file("07_push__with-new-branch.payload.json"),
    ));
    let Publication::Skipped(e) = &p else {
        panic!("{p:?}")
    };
    assert_eq!(e.reason.code, SkipCode::Branch);
    assert!(
        e.reason.message.contains("`master`"),
        "{}",
        e.reason.message
    );
    assert_eq!(e.project, "hello-build");
    round_trip(&p);

    let p = publication(run(
        &config,
        "pull_request",
        &corpus_file("10_pull_request__opened.payload.json"),
    ));
    let Publication::Skipped(e) = &p else {
        panic!("{p:?}")
    };
    assert_eq!(e.reason.code, SkipCode::Branch);
    assert!(
        e.reason.message.contains("base branch `master`"),
        "{}",
        e.reason.message
    );
}

/// A delivery through a GitHub App names its installation: the build's
/// events carry it, so that App mode reports with that installation's
/// tokens; a repository's own webhook names none.
#[test]
fn the_app_installation_a_delivery_came_through_travels_with_the_build() {
    let dev = Config::dev();
    let installation =
        |event: &str, file: &str| match publication(run(&dev, event, &corpus_file(file))) {
            Publication::Requested(e) => e.source.installation_id,
            Publication::Skipped(e) => e.source.installation_id,
            Publication::CheckRun(e) => e.installation_id,
            Publication::Members(items) => panic!("the dev configuration has no builds: {items:?}"),
        };
    assert_eq!(
        installation("push", "07_push__with-new-branch.payload.json"),
        Some(1)
    );
    assert_eq!(
        installation("pull_request", "10_pull_request__opened.payload.json"),
        Some(1)
    );
    // The sample push of examples/, as a repository webhook sends it.
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/push.json"
    ))
    .expect("examples/push.json");
    match publication(run(&dev, "push", &sample)) {
        Publication::Requested(e) => assert_eq!(e.source.installation_id, None),
        Publication::Skipped(e) => assert_eq!(e.source.installation_id, None),
        Publication::CheckRun(e) => panic!("a push is not a check run request: {e:?}"),
        Publication::Members(items) => panic!("the dev configuration has no builds: {items:?}"),
    }
}

/// A corpus delivery with its run's `external_id` set, as GitHub sends
/// them for a run Gantry made.
fn with_external_id(file: &str, external_id: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&corpus_file(file)).expect("corpus JSON");
    v["check_run"]["external_id"] = external_id.into();
    serde_json::to_vec(&v).expect("JSON")
}

/// The real `check_run` and `check_suite` deliveries: Re-run, a button and
/// Re-run all of a Gantry run become a `Check Run Requested` with who
/// asked and the installation; the runs' own `created` / `completed`, a
/// suite's `requested`, and another App's runs (no Gantry external id) are
/// ignored without an event.
#[test]
fn check_run_deliveries_become_requests_only_for_gantry_runs() {
    let dev = Config::dev();
    for (event, file) in [
        ("check_run", "40_check_run__created.payload.json"),
        ("check_run", "43_check_run__completed.payload.json"),
        ("check_suite", "30_check_suite__requested.payload.json"),
        ("check_run", "41_check_run__rerequested.payload.json"),
        ("check_run", "42_check_run__requested_action.payload.json"),
    ] {
        let a = run(&dev, event, &corpus_file(file));
        let (status, body) = reply(&a);
        assert_eq!(
            (status, body["outcome"].as_str()),
            (202, Some("ignored")),
            "{file}: {body}"
        );
    }
    let ours = "0f1c2d3e-aaaa-bbbb-cccc-0123456789ab/gantry-dev";
    let rerun = publication(run(
        &dev,
        "check_run",
        &with_external_id("41_check_run__rerequested.payload.json", ours),
    ));
    round_trip(&rerun);
    let Publication::CheckRun(e) = rerun else {
        panic!("{rerun:?}")
    };
    assert_eq!(e.repository, "github/hello-world");
    assert_eq!(e.sender, "octocat");
    assert_eq!(e.installation_id, Some(1));
    assert_eq!(
        e.request,
        CheckRequest::Rerun {
            check_run_id: 4,
            external_id: ours.into()
        }
    );
    let Publication::CheckRun(e) = publication(run(
        &dev,
        "check_run",
        &with_external_id("42_check_run__requested_action.payload.json", ours),
    )) else {
        panic!("not a check run request")
    };
    assert_eq!(e.sender, "codebytere");
    assert_eq!(
        e.request,
        CheckRequest::Action {
            check_run_id: 1494503112,
            external_id: ours.into(),
            identifier: "lgtm|26764".into()
        }
    );
    let Publication::CheckRun(e) = publication(run(
        &dev,
        "check_suite",
        &corpus_file("44_check_suite__rerequested.payload.json"),
    )) else {
        panic!("not a check suite request")
    };
    assert_eq!(e.sender, "octocoders-linter[bot]");
    assert_eq!(
        e.request,
        CheckRequest::RerunSuite {
            check_suite_id: 118578147
        }
    );
    // Someone else's delivery names a repository gantry.yaml does not.
    let (restrictive, _) = Config::parse(RESTRICTIVE).expect("valid");
    let a = run(
        &restrictive,
        "check_run",
        &with_external_id("41_check_run__rerequested.payload.json", ours),
    );
    assert_eq!(reply(&a).1["outcome"], "ignored");
}

#[test]
fn an_unconfigured_repository_is_ignored_without_an_event() {
    let (config, _) =
        Config::parse("version: 1\nrepositories:\n  - name: someone/else\n    project: p\n")
            .expect("valid");
    let (status, body) = reply(&run(
        &config,
        "push",
        &corpus_file("07_push__with-new-branch.payload.json"),
    ));
    assert_eq!(status, 202);
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Codertocat/Hello-World is not configured")),
        "{body}"
    );
}

#[test]
fn malformed_payloads_get_400_with_the_failing_json_path() {
    let dev = Config::dev();
    let (status, body) = reply(&run(&dev, "push", b"{\"ref\": "));
    assert_eq!(status, 400);
    assert!(
        body["reason"].as_str().is_some_and(|r| r.contains("push")),
        "{body}"
    );

    let mut push: serde_json::Value =
        serde_json::from_slice(&corpus_file("07_push__with-new-branch.payload.json"))
            .expect("JSON");
    push["repository"]["clone_url"] = serde_json::json!(42);
    let (status, body) = reply(&run(&dev, "push", push.to_string().as_bytes()));
    assert_eq!(status, 400);
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("`repository.clone_url`")),
        "{body}"
    );

    let mut pr: serde_json::Value =
        serde_json::from_slice(&corpus_file("10_pull_request__opened.payload.json")).expect("JSON");
    pr["pull_request"]["head"]
        .as_object_mut()
        .map(|h| h.remove("sha"));
    let (status, body) = reply(&run(&dev, "pull_request", pr.to_string().as_bytes()));
    assert_eq!(status, 400);
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("`pull_request.head`") && r.contains("sha")),
        "{body}"
    );

    pr["pull_request"]["head"]["sha"] = serde_json::json!("../../etc/passwd");
    let (status, body) = reply(&run(&dev, "pull_request", pr.to_string().as_bytes()));
    assert_eq!(status, 400);
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("pull_request.head.sha")),
        "{body}"
    );
}

/// JSON is UTF-8 (RFC 8259). A signed body with a byte that is not is
/// refused with where it is: the JSON path when it is in a field the
/// payload reads, the byte offset when in one it skips (which serde_json
/// alone would skip without looking).
#[test]
fn a_body_that_is_not_utf8_gets_400_saying_where() {
    let dev = Config::dev();
    let push = String::from_utf8(corpus_file("07_push__with-new-branch.payload.json"))
        .expect("the corpus delivery is UTF-8");
    let spoil = |field: &str| {
        let at = push.find(field).expect("the field is in the delivery") + field.len();
        let value = push[at..].find('"').expect("a string value") + at + 1;
        let mut body = push.clone().into_bytes();
        body.insert(value, 0xff);
        (body, value)
    };

    let (read, _) = spoil("\"ref\":");
    let (status, body) = reply(&run(&dev, "push", &read));
    assert_eq!(status, 400);
    assert!(
        body["reason"].as_str().is_some_and(|r| r.contains("`ref`")),
        "{body}"
    );

    let (skipped, at) = spoil("\"node_id\":");
    let (status, body) = reply(&run(&dev, "push", &skipped));
    assert_eq!(status, 400);
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("not UTF-8 at byte {at}"))),
        "{body}"
    );
}

fn answer(
    secrets: &[&str],
    headers: &http::HeaderMap,
    body: &[u8],
    max: usize,
) -> (u16, serde_json::Value) {
    reply(&process(
        secrets,
        &Config::dev(),
        headers,
        body,
        max,
        &mut Summary::default(),
    ))
}

#[test]
fn refusals_before_parsing() {
    let body = corpus_file("07_push__with-new-branch.payload.json");
    let max = DEFAULT_MAX_BODY_BYTES;
    // Wrong secret.
    let headers = github_headers("push", "d-1", &body, "not the secret");
    let (status, json) = answer(&[SECRET], &headers, &body, max);
    assert_eq!(
        (status, json["reason"].as_str()),
        (401, Some("signature does not match the payload"))
    );
    // No signature header.
    let mut headers = github_headers("push", "d-1", &body, SECRET);
    headers.remove("x-hub-signature-256");
    assert_eq!(answer(&[SECRET], &headers, &body, max).0, 401);
    // Too large, whatever the signature.
    let headers = github_headers("push", "d-1", &body, SECRET);
    assert_eq!(answer(&[SECRET], &headers, &body, 1024).0, 413);
    // No secret at all: fail closed.
    assert_eq!(answer(&[], &headers, &body, max).0, 503);
    // A delivery id that is not a GUID-like token.
    let headers = github_headers("push", "../../x", &body, SECRET);
    assert_eq!(answer(&[SECRET], &headers, &body, max).0, 400);
    // Either of two secrets during a rotation.
    let headers = github_headers("push", "d-2", &body, SECRET);
    let outcome = process(
        &["the new one", SECRET],
        &Config::dev(),
        &headers,
        &body,
        max,
        &mut Summary::default(),
    );
    assert!(matches!(outcome, Assessment::Publish { .. }));
}

/// A push GitHub could send at the limits: 2048 commits of long paths.
fn huge_push() -> Vec<u8> {
    let mut push: serde_json::Value =
        serde_json::from_slice(&corpus_file("07_push__with-new-branch.payload.json"))
            .expect("JSON");
    let commit = push["commits"][0].clone();
    let commits: Vec<serde_json::Value> = (0..2048)
        .map(|i| {
            let mut c = commit.clone();
            c["message"] = serde_json::json!("x".repeat(1_000));
            c["added"] = (0..4)
                .map(|j| format!("{}/{i}/{j}.rs", "deep/".repeat(40)))
                .collect();
            c
        })
        .collect();
    push["commits"] = commits.into();
    push["head_commit"]["message"] = serde_json::json!("y".repeat(100_000));
    push["created"] = false.into();
    push.to_string().into_bytes()
}

#[test]
fn the_event_stays_far_under_256_kb_whatever_github_sent() {
    let body = huge_push();
    assert!(
        body.len() > 4 * 1024 * 1024 && body.len() < 6 * 1024 * 1024,
        "synthetic push is {} bytes",
        body.len()
    );
    let p = publication(run(&Config::dev(), "push", &body));
    let Publication::Requested(e) = &p else {
        panic!("{p:?}")
    };
    assert!(e.source.changed_paths.truncated);
    assert!(
        e.source
            .head_commit
            .as_ref()
            .is_some_and(|c| c.message.len() <= 4096)
    );
    round_trip(&p);
}

/// With a rule for every repository, `github-app.installations` is what
/// keeps a stranger's installation of the App out: its deliveries are
/// ignored with the reason, and nothing is published. A repository's own
/// webhook (no installation) is not an installation's to refuse.
#[test]
fn only_the_installations_gantry_yaml_names_are_served() {
    let config = |ids: &str| {
        Config::parse(&format!(
            "version: 1\ngithub-app:\n  installations: [{ids}]\nrepositories:\n  - name: \"**\"\n    project: gantry-dev\n    push:\n      branches: ['**']\n"
        ))
        .expect("valid")
        .0
    };
    let push = corpus_file("07_push__with-new-branch.payload.json");
    let stranger = run(&config("957387, 42"), "push", &push);
    let (status, body) = reply(&stranger);
    assert_eq!(status, 202);
    assert_eq!(body["outcome"], "ignored", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("installation 1 is not in gantry.yaml")),
        "{body}"
    );
    assert!(matches!(
        publication(run(&config("1"), "push", &push)),
        Publication::Requested(_)
    ));
    let rerun = {
        let mut v: serde_json::Value =
            serde_json::from_slice(&corpus_file("41_check_run__rerequested.payload.json"))
                .expect("corpus JSON");
        v["check_run"]["external_id"] = "0f1c2d3e-aaaa/gantry-dev".into();
        serde_json::to_vec(&v).expect("JSON")
    };
    let (_, body) = reply(&run(&config("42"), "check_run", &rerun));
    assert_eq!(body["outcome"], "ignored", "{body}");
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/push.json"
    ))
    .expect("examples/push.json");
    assert!(matches!(
        publication(run(&config("42"), "push", &sample)),
        Publication::Requested(_)
    ));
    // Not numbers: said at their place.
    let errors = Config::parse(
        "version: 1\ngithub-app:\n  installations: [12, twelve]\nrepositories:\n  - name: a/b\n    project: p\n",
    )
    .expect_err("not an id");
    assert!(
        errors
            .iter()
            .any(|d| d.to_string().contains("github-app.installations[1]")),
        "{errors:?}"
    );
}
