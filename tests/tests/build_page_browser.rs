//! The build page in a real browser (headless Chromium from Debian), served
//! as `gantry dev` serves it: what a person sees of a failed build (the
//! result, the failed phase, the first error in view), a running build's
//! log growing on the page and its result once it ends, the keyboard, a
//! phone's width, dark mode. Screenshots go to `$CARGO_TARGET_DIR/screenshots`.

use std::sync::Arc;
use std::time::Duration;

use gantry_core::codebuild_events::BuildStatus;
use gantry_e2e::browser::Browser;
use gantry_e2e::pages::{PageWorld, failing_log, finish, pull_request_build};

/// The page served on loopback by `gantry dev`'s server (webhook and page
/// on one address), and a browser. `None` when no Chromium is here (the
/// test script installs it; without it the reason is printed).
async fn start() -> Option<(PageWorld, Browser)> {
    let browser = Browser::launch().await.expect("Chromium starts");
    let Some(browser) = browser else {
        assert!(
            std::env::var_os("GANTRY_CHROMIUM").is_none(),
            "GANTRY_CHROMIUM is set, yet no browser started"
        );
        return None;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    let world = PageWorld::start(&base, &[]).await;
    let served = gantry_cli::serve::Served {
        webhook: world.local.deps(&[]),
        pages: Some(world.settings.deps(&world.local.sdk)),
    };
    tokio::spawn(gantry_cli::serve::serve(listener, Arc::new(served)));
    Some((world, browser))
}

const WAIT: Duration = Duration::from_secs(15);

/// What `js` evaluates to on the page: its text, or its JSON.
async fn shown(browser: &mut Browser, js: &str) -> String {
    match browser.eval(js).await.expect(js) {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_s_page_shows_its_result_phase_and_first_error_in_view() {
    let Some((world, mut browser)) = start().await else {
        return;
    };
    let mut record = pull_request_build("0f1e2d3c-0000-4000-8000-00000000b001");
    // Long enough that the error is far below the first screen.
    world.append(&record, &failing_log(400)).await;
    finish(&mut record, BuildStatus::Failed);
    world.put(&record).await;
    // The link GitHub's status carries for a failed build.
    let link = world
        .links
        .build_link(
            &record.build_id,
            &record.source,
            true,
            true,
            gantry_core::events::now_ms() / 1000,
        )
        .await
        .expect("key")
        .expect("a page");
    assert!(link.ends_with("#first-error"), "{link}");

    browser.viewport(1280, 800, false).await.expect("viewport");
    browser.goto(&link).await.expect("the page loads");
    let result = shown(&mut browser, "document.querySelector('.result').innerText").await;
    assert_eq!(result, "✗ failed");
    let phase = shown(
        &mut browser,
        "document.querySelector('tr.failed-phase').innerText",
    )
    .await;
    assert!(
        phase.contains("BUILD") && phase.contains("failed"),
        "{phase}"
    );
    // The first error is the line in view, and it is the failing test.
    let in_view = "(() => { const e = document.getElementById('first-error'); const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight && e.innerText.includes('table_is_cached'); })()";
    assert_eq!(shown(&mut browser, in_view).await, "true");
    browser
        .screenshot("build-page-failed")
        .await
        .expect("screenshot");

    // Opened without the fragment (a link shared by hand), the page's
    // script scrolls to it all the same.
    let bare = link.trim_end_matches("#first-error");
    browser.goto(bare).await.expect("the page loads");
    browser
        .wait_for(in_view, WAIT)
        .await
        .expect("scrolled to the first error");

    // The keyboard: the first Tab reaches the skip links, Enter follows.
    browser.goto(bare).await.expect("the page loads");
    browser.press("Tab").await.expect("tab");
    let focused = shown(&mut browser, "document.activeElement.innerText").await;
    assert_eq!(focused, "Skip to the log");
    browser.press("Tab").await.expect("tab");
    browser.press("Enter").await.expect("enter");
    browser
        .wait_for("location.hash === '#first-error'", WAIT)
        .await
        .expect("the skip link goes to the first error");
    // A line's number is a link to it, for sharing: #L<n>.
    let anchored = shown(
        &mut browser,
        "document.querySelector('#first-error a.n').getAttribute('href')",
    )
    .await;
    assert!(anchored.starts_with("#L"), "{anchored}");

    // The top of the page, as it opens at its first error's link.
    browser.eval("window.scrollTo(0, 0)").await.expect("scroll");
    browser
        .screenshot("build-page-failed-top")
        .await
        .expect("screenshot");

    // The repository's history, from the page's own link.
    browser
        .eval("document.querySelector('#links + ul a').click()")
        .await
        .expect("click");
    browser
        .wait_for("document.querySelector('h1') && document.querySelector('h1').innerText.startsWith('Recent builds of octo-org/widgets')", WAIT)
        .await
        .expect("the history opens");
    let row = shown(&mut browser, "document.querySelector('tbody tr').innerText").await;
    assert!(row.contains("failed") && row.contains("9f2c1e4"), "{row}");
    browser
        .screenshot("build-page-history")
        .await
        .expect("screenshot");

    // A changed link: a clear refusal, and nothing of the build.
    let tampered = link.replace("sig=", "sig=f");
    browser.goto(&tampered).await.expect("the refusal loads");
    let seen = shown(&mut browser, "document.body.innerText").await;
    assert!(seen.starts_with("This link is not valid"), "{seen}");
    assert!(!seen.contains("widgets"), "{seen}");
    browser
        .screenshot("build-page-refused")
        .await
        .expect("screenshot");

    // A phone: nothing wider than the screen, the log wraps.
    browser.viewport(375, 740, true).await.expect("viewport");
    browser.goto(&link).await.expect("the page loads");
    let fits = shown(
        &mut browser,
        "document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    assert_eq!(fits, "true", "no sideways scrolling on a phone");
    browser
        .screenshot("build-page-phone")
        .await
        .expect("screenshot");

    // Dark mode from the system's preference.
    browser.emulate_dark(true).await.expect("dark");
    browser.goto(&link).await.expect("the page loads");
    let background = shown(
        &mut browser,
        "getComputedStyle(document.body).backgroundColor",
    )
    .await;
    assert_eq!(background, "rgb(13, 17, 23)");
    browser
        .screenshot("build-page-dark")
        .await
        .expect("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_build_s_page_follows_its_log_then_shows_the_result() {
    let Some((world, mut browser)) = start().await else {
        return;
    };
    let mut record = pull_request_build("0f1e2d3c-0000-4000-8000-00000000b002");
    world.put(&record).await;
    let log = failing_log(0);
    world.append(&record, &log[..8]).await;
    let link = world.link(&record).await;
    browser.viewport(1280, 800, false).await.expect("viewport");
    browser.goto(&link).await.expect("the page loads");
    let result = shown(&mut browser, "document.querySelector('.result').innerText").await;
    assert_eq!(result, "● running");
    let phases = shown(
        &mut browser,
        "document.querySelector('#phases + div table').innerText",
    )
    .await;
    assert!(
        phases.contains("BUILD") && phases.contains("in progress"),
        "{phases}"
    );

    // New lines appear on the open page, numbered on from the last.
    world
        .append(&record, &["test widgets::late_arrival ... ok".to_owned()])
        .await;
    browser
        .wait_for(
            "(document.getElementById('L9') || {innerText: ''}).innerText.includes('late_arrival')",
            WAIT,
        )
        .await
        .expect("the new line is followed");
    browser
        .screenshot("build-page-running")
        .await
        .expect("screenshot");

    // The build ends: the page shows its result without a reload by hand.
    world.append(&record, &log[8..]).await;
    finish(&mut record, BuildStatus::Failed);
    world.put(&record).await;
    browser
        .wait_for(
            "document.querySelector('.result') && document.querySelector('.result').innerText === '✗ failed'",
            WAIT,
        )
        .await
        .expect("the result replaces the running state");
    let error = shown(
        &mut browser,
        "document.getElementById('first-error').innerText",
    )
    .await;
    assert!(error.contains("table_is_cached"), "{error}");
}
