//! Every way a build starts besides a push's own build (issue 16), through
//! the chain against the moto server and a loopback GitHub: a manual run
//! of a ref, a schedule firing once per minute across overlapping
//! invocations, named builds with their aggregate status, and a pull
//! request held to path filters by GitHub's file list.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_cli::run::{RunError, RunOptions};
use gantry_core::events::{
    BuildRequested, BuildSource, ChangedPaths, PathRules, PullRequestRef, RepositoryRef, Trigger,
};
use gantry_e2e::{GITHUB_TOKEN, LocalStack, SECRET, codebuild_event, corpus_file, github_headers};
use gantry_local::functions::{GitHubUrls, LocalFunctions};
use gantry_local::stack;
use gantry_schedule::{Fired, Tick};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REPO: &str = "Codertocat/Hello-World";
const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make test\n";

struct World {
    local: LocalStack,
    functions: LocalFunctions,
    webhook: gantry_webhook::Deps,
    github: MockServer,
}

impl World {
    async fn start(config: &str, buildspec: &str) -> World {
        let local = LocalStack::start(config).await;
        let github = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path_regex(format!("^/repos/{REPO}/contents/.*$")))
            .respond_with(ResponseTemplate::new(200).set_body_string(buildspec))
            .mount(&github)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(format!(
                "^/repos/{REPO}/statuses/[0-9a-f]{{40}}$"
            )))
            .respond_with(ResponseTemplate::new(201).set_body_string("{}"))
            .mount(&github)
            .await;
        // The repository and its branch's head, as GitHub answers them.
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}")))
            .and(header(
                "authorization",
                format!("Bearer {GITHUB_TOKEN}").as_str(),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "full_name": REPO,
                "name": "Hello-World",
                "owner": {"login": "Codertocat"},
                "clone_url": format!("https://github.com/{REPO}.git"),
                "html_url": format!("https://github.com/{REPO}"),
                "default_branch": "master",
                "private": false,
            })))
            .mount(&github)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/commits/master")))
            .and(header("accept", "application/vnd.github.sha"))
            .respond_with(ResponseTemplate::new(200).set_body_string(SHA))
            .mount(&github)
            .await;
        let functions = LocalFunctions::new(
            &local.sdk,
            &GitHubUrls {
                contents_api: &github.uri(),
                with_token: true,
                statuses_api: &github.uri(),
                app: None,
                page_url: None,
            },
        )
        .expect("functions");
        let webhook = stack::webhook_settings(&[])
            .expect("settings")
            .deps(&local.sdk);
        World {
            local,
            functions,
            webhook,
            github,
        }
    }

    async fn pump(&self) -> Vec<gantry_local::tap::Observed> {
        self.local.pump(&self.functions).await
    }

    /// The statuses GitHub received, in order: (context, state, description).
    async fn statuses(&self) -> Vec<(String, String, String)> {
        self.github
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().contains("/statuses/"))
            .map(|r| {
                let b: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
                (s("context"), s("state"), s("description"))
            })
            .collect()
    }

    /// The last status of `context`.
    async fn last(&self, context: &str) -> Option<(String, String)> {
        self.statuses()
            .await
            .into_iter()
            .rev()
            .find(|(c, _, _)| c == context)
            .map(|(_, state, description)| (state, description))
    }

    /// The pushed branch's badge.
    async fn badge(&self) -> String {
        let badge = aws_sdk_s3::Client::new(&self.local.sdk)
            .get_object()
            .bucket(stack::names::BUCKET)
            .key(gantry_core::badge::badge_key(REPO, "master"))
            .send()
            .await
            .expect("the branch's badge");
        let bytes = badge.body.collect().await.expect("its body").into_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn events_deps(&self) -> gantry_build_events::Deps {
        stack::build_events_settings(&[("GITHUB_API_URL", &self.github.uri())])
            .expect("settings")
            .deps(&self.local.sdk)
    }

    fn schedule_deps(&self) -> gantry_schedule::Deps {
        stack::schedule_settings(&[("GITHUB_API_URL", &self.github.uri())])
            .expect("settings")
            .deps(&self.local.sdk)
    }

    fn run_options(&self) -> RunOptions {
        RunOptions {
            repository: REPO.into(),
            git_ref: None,
            sha: None,
            project: None,
            builds: Vec::new(),
            vars: Vec::new(),
            bus: stack::names::BUS.into(),
            config: None,
            config_parameter: stack::names::CONFIG_PARAMETER.into(),
            bucket: Some(stack::names::BUCKET.into()),
            github_api_url: Some(self.github.uri()),
        }
    }
}

fn token() -> gantry_aws::secrets::Secret {
    gantry_aws::secrets::Secret::new(GITHUB_TOKEN)
}

/// The events of `detail_type` the event log saw.
fn of<'a>(events: &'a [gantry_local::tap::Observed], detail_type: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|o| o.detail_type == detail_type)
        .map(|o| &o.detail)
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_manual_run_of_a_ref_builds_its_head_by_the_callers_identity_and_counts_attempts() {
    let config = gantry_e2e::every_push_config("    secrets:\n      NPM_TOKEN: /gantry/dev/npm\n");
    let world = World::start(&config, BUILDSPEC).await;
    let mut options = world.run_options();
    options.vars = vec![("LEVEL".into(), "full".into())];
    let requested = gantry_cli::run::run(&options, &world.local.sdk, Some(&token()))
        .await
        .expect("requested");
    assert_eq!(requested.commit, SHA, "master's head, from GitHub");
    // moto's caller: who asked is the credentials' identity.
    assert!(requested.by.starts_with("arn:aws:"), "{}", requested.by);
    let events = world.pump().await;
    let asked = of(&events, "Build Requested");
    assert_eq!(asked.len(), 1, "{events:?}");
    let source: BuildSource = serde_json::from_value(asked[0]["source"].clone()).expect("a source");
    assert_eq!(source.trigger, Trigger::Manual);
    assert_eq!(source.branch.as_deref(), Some("master"));
    assert_eq!(source.attempt, 1);
    let run = source.run.expect("who asked");
    assert_eq!(run.by, requested.by);
    assert_eq!(run.variables[0].name, "LEVEL");
    // Then as any other request: validated, secrets checked (NPM_TOKEN is
    // missing: rejected with the parameter named), status posted.
    assert_eq!(of(&events, "Buildspec Validated").len(), 1, "{events:?}");
    let rejected = of(&events, "Build Rejected");
    assert_eq!(rejected.len(), 1, "{events:?}");
    assert!(
        rejected[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("/gantry/dev/npm")),
        "{}",
        rejected[0]
    );
    assert_eq!(
        world.last("gantry/gantry-dev").await.map(|s| s.0),
        Some("failure".into())
    );

    // A variable with a secret's name is refused before anything is asked.
    let mut shadow = world.run_options();
    shadow.vars = vec![("NPM_TOKEN".into(), "mine".into())];
    let e = gantry_cli::run::run(&shadow, &world.local.sdk, Some(&token()))
        .await
        .expect_err("refused");
    assert!(matches!(e, RunError::Refused(_)), "{e}");
    assert!(e.to_string().contains("NPM_TOKEN"), "{e}");
    assert!(
        world
            .local
            .logged(Duration::from_millis(300))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_manual_run_builds_and_a_second_run_of_the_commit_is_attempt_two() {
    let world = World::start(&gantry_e2e::every_push_config(""), BUILDSPEC).await;
    let mut options = world.run_options();
    options.git_ref = Some("master".into());
    gantry_cli::run::run(&options, &world.local.sdk, Some(&token()))
        .await
        .expect("requested");
    let events = world.pump().await;
    let started = of(&events, "Build Started");
    assert_eq!(started.len(), 1, "{events:?}");
    assert_eq!(started[0]["source"]["trigger"], "manual");
    assert_eq!(
        world.last("gantry/gantry-dev").await.map(|s| s.0),
        Some("pending".into())
    );
    // Built before: the next run of the same commit is attempt 2.
    let again = gantry_cli::run::run(&options, &world.local.sdk, Some(&token()))
        .await
        .expect("requested");
    assert_eq!(again.builds[0].3, 2, "{:?}", again.builds);
    let events = world.pump().await;
    assert_eq!(of(&events, "Build Started")[0]["source"]["attempt"], 2);

    // A variable shadowing the buildspec's own secret is refused by
    // inject-secrets, naming it.
    let with_secret = "version: 0.2\nenv:\n  parameter-store:\n    API_KEY: /gantry/dev/api\nphases:\n  build:\n    commands:\n      - make test\n";
    let world = World::start(&gantry_e2e::every_push_config(""), with_secret).await;
    let mut options = world.run_options();
    options.vars = vec![("API_KEY".into(), "not-the-secret".into())];
    gantry_cli::run::run(&options, &world.local.sdk, Some(&token()))
        .await
        .expect("requested");
    let events = world.pump().await;
    let rejected = of(&events, "Build Rejected");
    assert_eq!(rejected.len(), 1, "{events:?}");
    let reason = rejected[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("API_KEY") && reason.contains("never replaces a secret"),
        "{reason}"
    );
    assert!(of(&events, "Build Started").is_empty());
}

const SCHEDULED: &str = "version: 1\nrepositories:\n  - name: Codertocat/Hello-World\n    project: gantry-dev\n    schedules:\n      - name: nightly\n        cron: '0 3 * * *'\n        time-zone: Europe/Berlin\n";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a time")
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "current_thread")]
async fn a_schedule_fires_once_per_minute_across_overlapping_invocations() {
    let world = World::start(SCHEDULED, BUILDSPEC).await;
    let deps = world.schedule_deps();
    // 03:00 in Berlin (winter, UTC+1): two invocations of the same minute
    // (a retry overlapping the first), seconds apart.
    let (first, retry) = (
        Tick::at(at("2026-01-05T02:00:01Z")),
        Tick::at(at("2026-01-05T02:00:40Z")),
    );
    let (a, b) = tokio::join!(
        gantry_schedule::tick(&deps, &first),
        gantry_schedule::tick(&deps, &retry),
    );
    // One requests it; the other finds it done, or (still being done)
    // fails, so that Lambda retries it, and the retry finds it done.
    let mut requested = 0;
    for (result, tick) in [(a, &first), (b, &retry)] {
        let fired = match result {
            Ok(summary) => summary.fired,
            Err(gantry_schedule::ScheduleError::Schedules { first, .. }) => {
                assert!(first.contains("being carried out"), "{first}");
                gantry_schedule::tick(&deps, tick)
                    .await
                    .expect("the retry")
                    .fired
            }
            Err(e) => panic!("{e}"),
        };
        match fired.as_slice() {
            [(_, Fired::Requested(_))] => requested += 1,
            [(_, Fired::Duplicate)] => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(requested, 1);
    // Not its minute: nothing.
    let other = gantry_schedule::tick(&deps, &Tick::at(at("2026-01-05T03:00:00Z")))
        .await
        .expect("ticked");
    assert!(other.fired.is_empty(), "{other:?}");

    let events = world.pump().await;
    let asked = of(&events, "Build Requested");
    assert_eq!(asked.len(), 1, "one build for the minute: {events:?}");
    assert_eq!(asked[0]["source"]["trigger"], "schedule");
    assert_eq!(asked[0]["source"]["commit_sha"], SHA);
    assert_eq!(asked[0]["source"]["branch"], "master");
    assert_eq!(of(&events, "Build Started").len(), 1, "{events:?}");

    // The next night, its build still running: no second pending build.
    let next = gantry_schedule::tick(&deps, &Tick::at(at("2026-01-06T02:00:00Z")))
        .await
        .expect("ticked");
    assert!(
        matches!(next.fired.as_slice(), [(_, Fired::Pending(_))]),
        "{next:?}"
    );
    assert!(world.pump().await.is_empty());

    // The build ends (build-events reports it), and the schedule is free.
    let id = of(&events, "Build Started")[0]["build_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    gantry_build_events::handle_event(&world.events_deps(), &codebuild_event(&id, "SUCCEEDED"))
        .await
        .expect("handled");
    let third = gantry_schedule::tick(&deps, &Tick::at(at("2026-01-07T02:00:00Z")))
        .await
        .expect("ticked");
    assert!(
        matches!(third.fired.as_slice(), [(_, Fired::Requested(_))]),
        "{third:?}"
    );
    assert_eq!(of(&world.pump().await, "Build Requested").len(), 1);
}

const FAN_OUT: &str = "version: 1\nrepositories:\n  - name: Codertocat/*\n    project: gantry-dev\n    push:\n      branches: ['**']\n    builds:\n      - name: lint\n      - name: test\n      - name: docs\n        paths: ['docs/**']\n";

/// The corpus's push, as an update of an existing branch: its changed
/// paths (README.md) are then the push's whole change.
fn push_of_readme() -> Vec<u8> {
    let mut push: Value =
        serde_json::from_slice(&corpus_file("07_push__with-new-branch.payload.json"))
            .expect("corpus JSON");
    push["created"] = json!(false);
    serde_json::to_vec(&push).expect("JSON")
}

/// Pushes, runs the chain, and returns the started builds by member.
async fn fan_out(world: &World, delivery: &str) -> Vec<(String, String)> {
    let body = push_of_readme();
    let reply = gantry_webhook::handle(
        &world.webhook,
        &github_headers("push", delivery, &body, SECRET),
        &body,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let events = world.pump().await;
    assert_eq!(of(&events, "Build Requested").len(), 2, "{events:?}");
    let skipped = of(&events, "Build Skipped");
    assert_eq!(skipped.len(), 1, "{events:?}");
    assert_eq!(skipped[0]["source"]["member"]["name"], "docs");
    assert_eq!(skipped[0]["correlation_id"], format!("{delivery}.docs"));
    of(&events, "Build Started")
        .iter()
        .map(|e| {
            (
                e["source"]["member"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["build_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn three_named_builds_one_skipped_by_paths_one_failing_fail_the_aggregate_naming_it() {
    let world = World::start(FAN_OUT, BUILDSPEC).await;
    let started = fan_out(&world, "f0000000-0000-4000-8000-000000000001").await;
    assert_eq!(started.len(), 2, "{started:?}");
    // Skipped by its paths: green on its own context, and the whole waits.
    assert_eq!(
        world.last("gantry/docs").await.map(|s| s.0),
        Some("success".into())
    );
    let (state, description) = world.last("gantry/all").await.expect("an aggregate");
    assert_eq!(state, "pending", "{description}");
    let deps = world.events_deps();
    // The failing build ends first, the passing one last.
    let mut started = started;
    started.sort_by_key(|(member, _)| member != "test");
    for (member, id) in &started {
        let status = if member == "test" {
            "FAILED"
        } else {
            "SUCCEEDED"
        };
        gantry_build_events::handle_event(&deps, &codebuild_event(id, status))
            .await
            .expect("handled");
    }
    assert_eq!(
        world.last("gantry/lint").await.map(|s| s.0),
        Some("success".into())
    );
    assert_eq!(
        world.last("gantry/test").await.map(|s| s.0),
        Some("failure".into())
    );
    assert_eq!(
        world.last("gantry/all").await,
        Some(("failure".into(), "1 of 3 failed: test".into()))
    );
    // The branch's badge is the whole's, not the last member's.
    assert!(world.badge().await.contains("failing"));
}

#[tokio::test(flavor = "current_thread")]
async fn three_named_builds_all_passing_or_skipped_make_the_aggregate_succeed() {
    let world = World::start(FAN_OUT, BUILDSPEC).await;
    let started = fan_out(&world, "f0000000-0000-4000-8000-000000000002").await;
    // Both end at once, as two build-events invocations would.
    let deps = world.events_deps();
    let (one, two) = (
        codebuild_event(&started[0].1, "SUCCEEDED"),
        codebuild_event(&started[1].1, "SUCCEEDED"),
    );
    let (a, b) = tokio::join!(
        gantry_build_events::handle_event(&deps, &one),
        gantry_build_events::handle_event(&deps, &two),
    );
    a.expect("handled");
    b.expect("handled");
    assert_eq!(
        world.last("gantry/all").await,
        Some((
            "success".into(),
            "all 3 builds passed or were skipped".into()
        ))
    );
    assert!(world.badge().await.contains("passing"));
    // The aggregate was never final before every member was.
    let statuses = world.statuses().await;
    let members_done = statuses
        .iter()
        .rposition(|(c, s, _)| (c == "gantry/lint" || c == "gantry/test") && s == "success")
        .expect("the members' ends");
    assert!(
        statuses[..members_done]
            .iter()
            .all(|(c, s, _)| c != "gantry/all" || s == "pending"),
        "{statuses:?}"
    );
}

fn pull_request(paths: PathRules) -> BuildRequested {
    BuildRequested {
        v: 1,
        correlation_id: "c0ffee00-1111-4222-8333-444455556666".into(),
        project: "gantry-dev".into(),
        buildspec: None,
        source: BuildSource {
            trigger: Trigger::PullRequest,
            repository: RepositoryRef {
                full_name: REPO.into(),
                owner: "Codertocat".into(),
                name: "Hello-World".into(),
                clone_url: format!("https://github.com/{REPO}.git"),
                html_url: format!("https://github.com/{REPO}"),
                default_branch: Some("master".into()),
                private: false,
            },
            commit_sha: SHA.into(),
            git_ref: "refs/pull/2/head".into(),
            branch: Some("changes".into()),
            tag: None,
            pull_request: Some(PullRequestRef {
                number: 2,
                title: "Update the README".into(),
                author: "Codertocat".into(),
                url: format!("https://github.com/{REPO}/pull/2"),
                action: "synchronize".into(),
                base_branch: "master".into(),
                base_sha: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
                head_branch: "changes".into(),
                head_repository: Some(REPO.into()),
                draft: false,
                approved_by: None,
                label: None,
            }),
            fork: false,
            pusher: None,
            sender: Some("Codertocat".into()),
            head_commit: None,
            changed_paths: ChangedPaths {
                paths: Vec::new(),
                truncated: true,
            },
            compare_url: None,
            signed_at_ms: 0,
            received_at_ms: 0,
            installation_id: None,
            attempt: 1,
            member: None,
            run: None,
            compute: Default::default(),
        },
        paths: Some(paths),
    }
}

/// validate-buildspec against the local stack and GitHub at `github`.
fn validate_deps(local: &LocalStack, github: &MockServer) -> gantry_validate_buildspec::Deps {
    gantry_validate_buildspec::Settings {
        github: gantry_aws::github::credentials::GitHubSettings {
            api_url: github.uri(),
            timeout: gantry_aws::github::contents::DEFAULT_TIMEOUT,
            token_parameter: Some(stack::names::GITHUB_TOKEN_PARAMETER.into()),
            app: None,
        },
        artifact_bucket: stack::names::BUCKET.into(),
        event_bus: stack::names::BUS.into(),
    }
    .deps(&local.sdk)
}

fn docs_only() -> PathRules {
    PathRules {
        paths: Some(vec!["docs/**".into()]),
        paths_ignore: Vec::new(),
    }
}

fn files(names: impl Iterator<Item = String>) -> Value {
    Value::Array(
        names
            .map(|n| json!({"filename": n, "status": "modified"}))
            .collect(),
    )
}

#[tokio::test(flavor = "current_thread")]
async fn a_pull_request_is_held_to_its_path_filters_by_githubs_file_list() {
    use gantry_validate_buildspec::Outcome;
    let local = LocalStack::start(&gantry_e2e::every_push_config("")).await;
    let gh = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(format!("^/repos/{REPO}/contents/.*$")))
        .respond_with(ResponseTemplate::new(200).set_body_string(BUILDSPEC))
        .mount(&gh)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/{REPO}/pulls/2/files")))
        .and(query_param("page", "1"))
        .and(header(
            "authorization",
            format!("Bearer {GITHUB_TOKEN}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(files(["README.md".to_owned()].into_iter())),
        )
        .mount(&gh)
        .await;
    let validate = validate_deps(&local, &gh);
    // README.md only: nothing under docs/ changed: skipped, with the list.
    match gantry_validate_buildspec::handle(&validate, pull_request(docs_only()))
        .await
        .expect("handled")
    {
        Outcome::Skipped(e) => {
            assert_eq!(e.source.changed_paths.paths, ["README.md"]);
            assert!(e.reason.message.contains("paths"), "{}", e.reason.message);
        }
        other => panic!("{other:?}"),
    }
    // docs/** or no filter at all: it builds.
    let mut anything = pull_request(docs_only());
    anything.paths = Some(PathRules {
        paths: None,
        paths_ignore: vec!["docs/**".into()],
    });
    assert!(matches!(
        gantry_validate_buildspec::handle(&validate, anything)
            .await
            .expect("handled"),
        Outcome::Validated(_)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn a_pull_request_whose_list_github_truncates_or_cannot_give_builds() {
    use gantry_validate_buildspec::Outcome;
    let local = LocalStack::start(&gantry_e2e::every_push_config("")).await;
    let gh = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(format!("^/repos/{REPO}/contents/.*$")))
        .respond_with(ResponseTemplate::new(200).set_body_string(BUILDSPEC))
        .mount(&gh)
        .await;
    // 3,000 files, none under docs/, in 30 full pages: GitHub's limit.
    for page in 1..=30u32 {
        let names = (0..100).map(move |i| format!("src/{page}/{i}.rs"));
        Mock::given(method("GET"))
            .and(path(format!("/repos/{REPO}/pulls/2/files")))
            .and(query_param("page", page.to_string().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(files(names)))
            .expect(1)
            .mount(&gh)
            .await;
    }
    let validate = validate_deps(&local, &gh);
    assert!(matches!(
        gantry_validate_buildspec::handle(&validate, pull_request(docs_only()))
            .await
            .expect("handled"),
        Outcome::Validated(_)
    ));
    gh.verify().await;

    // GitHub cannot answer: it builds.
    let down = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(format!("^/repos/{REPO}/contents/.*$")))
        .respond_with(ResponseTemplate::new(200).set_body_string(BUILDSPEC))
        .mount(&down)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/{REPO}/pulls/2/files")))
        .respond_with(ResponseTemplate::new(502))
        .mount(&down)
        .await;
    let validate = validate_deps(&local, &down);
    assert!(matches!(
        gantry_validate_buildspec::handle(&validate, pull_request(docs_only()))
            .await
            .expect("handled"),
        Outcome::Validated(_)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn the_webhook_leaves_a_pull_requests_path_filters_to_validate_buildspec() {
    let config = gantry_e2e::every_push_config("    paths: ['docs/**']\n");
    let world = World::start(&config, BUILDSPEC).await;
    let body = corpus_file("13_pull_request__synchronize.payload.json");
    let reply = gantry_webhook::handle(
        &world.webhook,
        &github_headers(
            "pull_request",
            "f0000000-0000-4000-8000-000000000009",
            &body,
            SECRET,
        ),
        &body,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let logged = world.local.logged(Duration::from_secs(2)).await;
    let asked = of(&logged, "Build Requested");
    assert_eq!(asked.len(), 1, "{logged:?}");
    assert_eq!(asked[0]["paths"], json!({"paths": ["docs/**"]}));
}
