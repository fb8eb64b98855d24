//! The DevTools client against a real headless Chromium and a page served
//! here on loopback: the DOM is read, a late element is waited for, a
//! screenshot is written, Tab moves focus, a phone viewport narrows the
//! window, dark mode is seen by CSS media queries.

use std::time::{Duration, Instant};

use gantry_e2e::browser::{Browser, BrowserError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Gantry browser test</title>
<style>body { font: 16px sans-serif; } @media (prefers-color-scheme: dark) { body { background: #111; color: #eee; } }</style>
</head><body>
<h1 id="title">Hello from Gantry</h1>
<p><a id="first" href="/first">first link</a> <a id="second" href="/second">second link</a></p>
<script>
setTimeout(() => {
  const p = document.createElement("p");
  p.id = "late";
  p.textContent = "arrived late";
  document.body.append(p);
}, 300);
</script>
</body></html>"#;

/// Serves PAGE for every request on a loopback port; returns its URL.
async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}/")
}

#[tokio::test]
async fn a_page_is_read_waited_on_shot_tabbed_and_resized() {
    let started = Instant::now();
    let Some(mut browser) = Browser::launch().await.expect("launch chromium") else {
        return; // launch said why on stderr
    };
    let url = serve().await;
    browser.goto(&url).await.expect("load the page");

    let title = browser
        .eval("document.getElementById('title').textContent")
        .await
        .expect("eval");
    assert_eq!(title, "Hello from Gantry");
    assert_eq!(
        browser.eval("document.title").await.expect("eval"),
        "Gantry browser test"
    );
    assert_eq!(
        browser
            .eval("Promise.resolve(6 * 7)")
            .await
            .expect("awaited promise"),
        42
    );

    // A JS exception is an error with its text, not a value.
    match browser.eval("null.nope").await {
        Err(BrowserError::Js { text, .. }) => assert!(text.contains("TypeError"), "{text}"),
        other => panic!("expected a JS error, got {other:?}"),
    }

    // The element the page adds after 300 ms is seen.
    browser
        .wait_for(
            "document.getElementById('late').textContent === 'arrived late'",
            Duration::from_secs(10),
        )
        .await
        .expect("the late element");
    // A condition that never holds times out, naming itself.
    let err = browser
        .wait_for("window.never === 1", Duration::from_millis(200))
        .await
        .expect_err("never true");
    assert!(err.to_string().contains("window.never === 1"), "{err}");

    // Tab moves focus to the first link, again to the second, Shift+Tab back.
    browser.press("Tab").await.expect("Tab");
    assert_eq!(
        browser
            .eval("document.activeElement.id")
            .await
            .expect("eval"),
        "first"
    );
    browser.press("Tab").await.expect("Tab");
    assert_eq!(
        browser
            .eval("document.activeElement.id")
            .await
            .expect("eval"),
        "second"
    );
    browser.press("Shift+Tab").await.expect("Shift+Tab");
    assert_eq!(
        browser
            .eval("document.activeElement.id")
            .await
            .expect("eval"),
        "first"
    );

    // A screenshot is a PNG file under the screenshots directory.
    let shot = browser
        .screenshot("browser-selftest-desktop")
        .await
        .expect("screenshot");
    let png = std::fs::read(&shot).expect("read the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        shot.display()
    );
    assert!(shot.starts_with(gantry_e2e::browser::screenshots_dir()));

    // A phone-sized viewport.
    browser.viewport(375, 800, true).await.expect("viewport");
    assert_eq!(browser.eval("window.innerWidth").await.expect("eval"), 375);

    // Dark mode reaches CSS.
    browser.emulate_dark(true).await.expect("dark");
    let dark = "matchMedia('(prefers-color-scheme: dark)').matches";
    assert_eq!(browser.eval(dark).await.expect("eval"), true);
    let background = browser
        .eval("getComputedStyle(document.body).backgroundColor")
        .await
        .expect("eval");
    assert_eq!(background, "rgb(17, 17, 17)");
    let shot = browser
        .screenshot("browser-selftest-phone-dark")
        .await
        .expect("screenshot");
    assert!(std::fs::read(&shot).expect("read").starts_with(b"\x89PNG"));
    browser.emulate_dark(false).await.expect("light");
    assert_eq!(browser.eval(dark).await.expect("eval"), false);

    // Enter on the focused first link follows it (a new load).
    browser.press("Enter").await.expect("Enter");
    browser
        .wait_for("location.pathname === '/first'", Duration::from_secs(10))
        .await
        .expect("followed the link");

    drop(browser);
    eprintln!("browser self-test took {:?}", started.elapsed());
}
