//! The local executor against a real shell: each test is a behaviour of
//! CodeBuild's that a buildspec relies on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gantry_core::buildspec::runnable::{PhaseName, runnable};
use gantry_core::codebuild_events::BuildStatus;
use gantry_local::executor::{Build, ExecutorError, Outcome, PhaseStatus, Place, Step, run};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gantry-executor-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).expect("scratch dir");
    dir
}

fn build(text: &str, parameters: &[(&str, &str)]) -> Build {
    let dir = scratch();
    let base_env = ["PATH", "HOME", "LANG"]
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect();
    Build {
        id: "gantry-dev:0000-test".into(),
        source_dir: dir.join("src"),
        runnable: runnable(text).expect("a valid buildspec").0,
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        codebuild_env: vec![
            ("CODEBUILD_BUILD_ID".into(), "gantry-dev:0000-test".into()),
            (
                "CODEBUILD_SRC_DIR".into(),
                dir.join("src").display().to_string(),
            ),
        ],
        base_env,
        timeout: Duration::from_secs(30),
        log: dir.join("build.log"),
        stop: None,
        place: Place::Host,
    }
}

/// Runs the build; the printed lines, each `PHASE text`.
async fn run_build(build: &Build) -> (Outcome, Vec<String>) {
    let mut lines = Vec::new();
    let mut observe = |step: Step<'_>| {
        if let Step::Line(phase, text) = step
            && !text.starts_with("Running command")
        {
            lines.push(format!("{} {text}", phase.codebuild_name()));
        }
    };
    let outcome = run(build, &mut observe).await.expect("the build runs");
    (outcome, lines)
}

fn statuses(outcome: &Outcome) -> Vec<(PhaseName, PhaseStatus)> {
    outcome.phases.iter().map(|p| (p.name, p.status)).collect()
}

#[tokio::test]
async fn version_02_is_one_shell_session_for_the_whole_build() {
    let b = build(
        "\
version: 0.2
env:
  shell: bash
  variables:
    GREETING: hello
  exported-variables: [IMAGE_TAG]
phases:
  install:
    commands:
      - mkdir -p out && cd out
      - UNEXPORTED=kept
  pre_build:
    commands:
      - export IMAGE_TAG=\"v-$CODEBUILD_BUILD_ID\"
  build:
    commands:
      - echo \"$GREETING from $(basename \"$PWD\"), $UNEXPORTED\"
      - printf 'no line break'
  post_build:
    commands:
      - echo \"tag $IMAGE_TAG succeeding=$CODEBUILD_BUILD_SUCCEEDING\"
",
        &[],
    );
    let (outcome, lines) = run_build(&b).await;
    assert_eq!(outcome.status, BuildStatus::Succeeded, "{lines:?}");
    assert_eq!(
        lines,
        [
            "BUILD hello from out, kept",
            "BUILD no line break",
            "POST_BUILD tag v-gantry-dev:0000-test succeeding=1",
        ]
    );
    assert_eq!(
        outcome.exported,
        [("IMAGE_TAG".to_owned(), "v-gantry-dev:0000-test".to_owned())]
    );
    let log = std::fs::read_to_string(&outcome.log).expect("the log is kept");
    assert!(log.contains("[BUILD] hello from out, kept"), "{log}");
}

#[tokio::test]
async fn a_failed_build_phase_still_runs_post_build_and_says_which_command() {
    let b = build(
        "\
version: 0.2
phases:
  build:
    commands:
      - echo compiling
      - exit_with() { return $1; }; exit_with 3
      - echo never
    finally:
      - echo cleaning up
  post_build:
    commands:
      - echo \"succeeding=$CODEBUILD_BUILD_SUCCEEDING\"
",
        &[],
    );
    let (outcome, lines) = run_build(&b).await;
    assert_eq!(outcome.status, BuildStatus::Failed);
    assert_eq!(outcome.failed_phase, Some(PhaseName::Build));
    assert_eq!(
        statuses(&outcome),
        [
            (PhaseName::Build, PhaseStatus::Failed),
            (PhaseName::PostBuild, PhaseStatus::Succeeded)
        ]
    );
    assert_eq!(
        lines,
        [
            "BUILD compiling",
            "BUILD cleaning up",
            "POST_BUILD succeeding=0"
        ]
    );
    let message = outcome.phases[0].message.as_deref().unwrap_or_default();
    assert!(
        message.contains("exit_with 3") && message.contains("exit status 3"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failed_install_ends_the_build_unless_it_continues() {
    let text = |on_failure: &str| {
        format!(
            "version: 0.2\nphases:\n  install:\n{on_failure}    commands:\n      - 'false'\n  build:\n    commands:\n      - echo built\n  post_build:\n    commands:\n      - echo after\n"
        )
    };
    let (outcome, lines) = run_build(&build(&text(""), &[])).await;
    assert_eq!(
        statuses(&outcome),
        [(PhaseName::Install, PhaseStatus::Failed)]
    );
    assert!(lines.is_empty(), "{lines:?}");

    let (outcome, lines) = run_build(&build(&text("    on-failure: CONTINUE\n"), &[])).await;
    assert_eq!(
        outcome.status,
        BuildStatus::Failed,
        "CONTINUE still fails the build"
    );
    assert_eq!(lines, ["BUILD built", "POST_BUILD after"]);
}

#[tokio::test]
async fn abort_on_a_failed_build_skips_post_build() {
    let (outcome, lines) = run_build(&build(
        "version: 0.2\nphases:\n  build:\n    on-failure: ABORT\n    commands:\n      - 'false'\n  post_build:\n    commands:\n      - echo after\n",
        &[],
    ))
    .await;
    assert_eq!(outcome.status, BuildStatus::Failed);
    assert_eq!(outcome.phases.len(), 1);
    assert!(lines.is_empty(), "{lines:?}");
}

#[tokio::test]
async fn retry_runs_a_failing_phase_again() {
    let (outcome, lines) = run_build(&build(
        "\
version: 0.2
phases:
  build:
    on-failure: RETRY-2
    commands:
      - echo attempt >> attempts
      - test $(wc -l < attempts) -ge 2
      - echo passed on attempt $(wc -l < attempts)
",
        &[],
    ))
    .await;
    assert_eq!(outcome.status, BuildStatus::Succeeded, "{lines:?}");
    assert_eq!(lines, ["BUILD passed on attempt 2"]);
}

#[tokio::test]
async fn version_01_runs_each_command_in_its_own_shell() {
    let (outcome, lines) = run_build(&build(
        "\
version: 0.1
phases:
  build:
    commands:
      - mkdir -p sub && cd sub && export SET=yes
      - echo \"in $(basename \"$PWD\") set=${SET:-no}\"
",
        &[],
    ))
    .await;
    assert_eq!(outcome.status, BuildStatus::Succeeded);
    assert_eq!(lines, ["BUILD in src set=no"]);
}

#[tokio::test]
async fn a_command_that_reads_its_input_does_not_swallow_the_next() {
    let (outcome, lines) = run_build(&build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat\n      - echo next\n",
        &[],
    ))
    .await;
    assert_eq!(outcome.status, BuildStatus::Succeeded);
    assert_eq!(lines, ["BUILD next"]);
}

#[tokio::test]
async fn a_command_that_ends_the_shell_fails_the_phase_and_post_build_still_runs() {
    let (outcome, lines) = run_build(&build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 4\n  post_build:\n    commands:\n      - echo after\n",
        &[],
    ))
    .await;
    assert_eq!(outcome.status, BuildStatus::Failed);
    assert!(
        outcome.phases[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("exit status 4")),
        "{:?}",
        outcome.phases[0]
    );
    assert_eq!(lines, ["POST_BUILD after"]);
}

#[tokio::test]
async fn a_build_past_its_timeout_is_timed_out_and_killed() {
    let mut b = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 30 & wait\n  post_build:\n    commands:\n      - echo after\n",
        &[],
    );
    b.timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let (outcome, lines) = run_build(&b).await;
    assert_eq!(outcome.status, BuildStatus::TimedOut);
    assert_eq!(
        statuses(&outcome),
        [(PhaseName::Build, PhaseStatus::TimedOut)]
    );
    assert!(lines.is_empty(), "{lines:?}");
    // The sleep was killed with its shell, not waited for.
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A newer commit supersedes the build: StopBuild kills what it runs (the
/// sleep too, in its process group) and it ends `STOPPED` in its phase.
#[tokio::test]
async fn a_stopped_build_is_killed_and_ends_stopped() {
    let mut b = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 30 & wait\n  post_build:\n    commands:\n      - echo after\n",
        &[],
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    b.stop = Some(stopped);
    let started = std::time::Instant::now();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = stop.send(true);
        stop
    });
    let (outcome, lines) = run_build(&b).await;
    drop(stopper.await);
    assert_eq!(outcome.status, BuildStatus::Stopped);
    assert_eq!(outcome.failed_phase, Some(PhaseName::Build));
    assert_eq!(
        statuses(&outcome),
        [(PhaseName::Build, PhaseStatus::Stopped)]
    );
    assert_eq!(lines, ["BUILD started"]);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn parameter_store_values_never_reach_the_printed_log() {
    let secret = "s3cr3t-v4lue-never-printed";
    let b = build(
        "\
version: 0.2
env:
  parameter-store:
    TOKEN: /gantry/dev/token
phases:
  build:
    commands:
      - echo \"token is $TOKEN\"
      - test \"$TOKEN\" = s3cr3t-v4lue-never-printed
",
        &[("TOKEN", secret)],
    );
    let (outcome, lines) = run_build(&b).await;
    assert_eq!(
        outcome.status,
        BuildStatus::Succeeded,
        "the build had the value"
    );
    assert_eq!(lines, ["BUILD token is ***"]);
    let log = std::fs::read_to_string(&outcome.log).expect("log");
    assert!(!log.contains(secret), "{log}");
}

#[tokio::test]
async fn what_cannot_run_here_is_said_before_anything_runs() {
    let b = build(
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /gantry/dev/token\nphases:\n  build:\n    commands: [echo hi]\n",
        &[],
    );
    let err = run(&b, &mut |_: Step<'_>| {}).await.expect_err("no value");
    assert!(
        matches!(err, ExecutorError::Parameter(ref v) if v == "TOKEN"),
        "{err}"
    );

    let b = build(
        "version: 0.2\nenv:\n  shell: powershell.exe\nphases:\n  build:\n    commands: [echo hi]\n",
        &[],
    );
    let err = run(&b, &mut |_: Step<'_>| {})
        .await
        .expect_err("no powershell");
    assert!(matches!(err, ExecutorError::Shell(_)), "{err}");
}

/// The image scripts/test makes for these tests (busybox, PATH=/bin), when
/// a Docker engine could be started; without one they say so and pass.
fn docker_image() -> Option<String> {
    let image = std::env::var("GANTRY_DOCKER_IMAGE")
        .ok()
        .filter(|i| !i.is_empty());
    if image.is_none() {
        eprintln!(
            "docker executor test not run: GANTRY_DOCKER_IMAGE is not set (scripts/test sets it when it can start Docker)"
        );
    }
    image
}

/// The containers of build `id` still there, after giving Docker's
/// removal of an exited container (asynchronous) a few seconds.
fn containers_of(id: &str) -> String {
    let prefix = id.replace(':', "-");
    let mut names = String::new();
    for _ in 0..50 {
        let out = std::process::Command::new("docker")
            .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
            .arg(format!("name={prefix}"))
            .output()
            .expect("docker ps");
        names = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if names.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    names
}

/// `--executor docker`: the phases run in the image (its PATH, not this
/// machine's), in one session across phases, with the source mounted at
/// CODEBUILD_SRC_DIR; secrets are masked as on the host; the container is
/// gone afterwards.
#[tokio::test]
async fn in_docker_the_build_runs_in_the_image_with_the_source_mounted() {
    let Some(image) = docker_image() else { return };
    let secret = "d0cker-s3cret-value";
    let mut b = build(
        "version: 0.2\nenv:\n  exported-variables: [WHERE]\n  parameter-store:\n    TOKEN: /gantry/dev/token\nphases:\n  pre_build:\n    commands:\n      - echo \"path=$PATH\"\n      - export WHERE=\"$(pwd)\"\n      - echo from-the-build > made.txt\n  build:\n    commands:\n      - cat source.txt\n      - echo \"token=$TOKEN\"\n  post_build:\n    commands:\n      - test \"$WHERE\" = \"$CODEBUILD_SRC_DIR\" && cat made.txt\n",
        &[("TOKEN", secret)],
    );
    std::fs::write(b.source_dir.join("source.txt"), "from-the-checkout\n").expect("write");
    b.id = "gantry-dev:docker-mounted".into();
    b.place = Place::Docker { image };
    let (outcome, lines) = run_build(&b).await;
    assert_eq!(outcome.status, BuildStatus::Succeeded, "{lines:?}");
    assert_eq!(
        lines,
        [
            "PRE_BUILD path=/bin",
            "BUILD from-the-checkout",
            "BUILD token=***",
            "POST_BUILD from-the-build",
        ]
    );
    assert_eq!(
        outcome.exported,
        [("WHERE".to_owned(), b.source_dir.display().to_string())]
    );
    // The file the build wrote is in the checkout on this machine.
    assert!(b.source_dir.join("made.txt").is_file());
    let log = std::fs::read_to_string(&outcome.log).expect("log");
    assert!(!log.contains(secret), "{log}");
    assert_eq!(containers_of(&b.id), "");
}

/// A stopped or timed-out build in a container: the container is removed,
/// not left running after its `docker run` is killed.
#[tokio::test]
async fn in_docker_a_stopped_build_leaves_no_container_behind() {
    let Some(image) = docker_image() else { return };
    let mut b = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 60\n",
        &[],
    );
    b.id = "gantry-dev:docker-stopped".into();
    b.place = Place::Docker { image };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    b.stop = Some(stopped);
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = stop.send(true);
        stop
    });
    let started = std::time::Instant::now();
    let (outcome, lines) = run_build(&b).await;
    drop(stopper.await);
    assert_eq!(outcome.status, BuildStatus::Stopped, "{lines:?}");
    assert_eq!(lines, ["BUILD started"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(containers_of(&b.id), "");
}

/// An image that is not on the machine is not pulled: the build cannot
/// run, and says what to do, before any phase.
#[tokio::test]
async fn in_docker_an_absent_image_is_not_downloaded() {
    if docker_image().is_none() {
        return;
    }
    let mut b = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n",
        &[],
    );
    b.place = Place::Docker {
        image: "gantry-test/not-here:0".into(),
    };
    let mut steps = 0;
    let err = run(&b, &mut |_| steps += 1)
        .await
        .expect_err("an absent image cannot run");
    assert!(matches!(err, ExecutorError::NoImage(_)), "{err}");
    assert!(
        err.to_string()
            .contains("docker pull gantry-test/not-here:0"),
        "{err}"
    );
    assert_eq!(steps, 0);
}
