//! A minimal Chrome DevTools Protocol client: headless Chromium loads a
//! page, and a test reads what a person would see (the DOM, a
//! screenshot, focus after a key press, a phone-sized viewport, dark mode).
//!
//! One browser process per [`Browser`], with a fresh profile directory;
//! both are removed on drop. Every wait has a timeout and a typed error.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Headless, as root, on a machine without network: nothing phones home.
const FLAGS: &str = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --disable-breakpad --remote-debugging-port=0";

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("GANTRY_CHROMIUM names {0}, which is not a file")]
    NotFound(PathBuf),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("chromium gave no DevTools page within {0:?} ({1}); its last stderr lines:\n{2}")]
    Start(Duration, String, String),
    #[error("DevTools websocket: {0}")]
    Ws(#[from] Box<tungstenite::Error>),
    #[error("the DevTools connection closed; chromium's last stderr lines:\n{0}")]
    Closed(String),
    #[error("{method} failed: {message}")]
    Protocol { method: String, message: String },
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
    #[error("JavaScript exception in `{js}`: {text}")]
    Js { js: String, text: String },
    #[error(
        "unknown key `{0}` (known: Tab Enter Escape Space Backspace Arrow*; Shift+ Control+ Alt+ Meta+)"
    )]
    Key(String),
}

impl From<tungstenite::Error> for BrowserError {
    fn from(e: tungstenite::Error) -> Self {
        BrowserError::Ws(Box::new(e))
    }
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> BrowserError {
    move |e| BrowserError::Io(context, e)
}

fn protocol(method: &str, message: impl Into<String>) -> BrowserError {
    let (method, message) = (method.to_string(), message.into());
    BrowserError::Protocol { method, message }
}

/// Keys `press` knows: name, `code`, Windows virtual key code, text typed.
const KEYS: &[(&str, &str, u32, &str)] = &[
    ("Tab", "Tab", 9, ""),
    ("Enter", "Enter", 13, "\r"),
    ("Escape", "Escape", 27, ""),
    (" ", "Space", 32, " "),
    ("Backspace", "Backspace", 8, ""),
    ("ArrowLeft", "ArrowLeft", 37, ""),
    ("ArrowUp", "ArrowUp", 38, ""),
    ("ArrowRight", "ArrowRight", 39, ""),
    ("ArrowDown", "ArrowDown", 40, ""),
];

/// The Chromium process and its profile directory, both gone on drop.
struct Process {
    child: Child,
    profile: PathBuf,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().map(|t| Vec::from(t.clone()));
        tail.unwrap_or_default().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // The browser process writes to the profile until it is gone.
        for _ in 0..200 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A headless Chromium with a websocket to its one page. Dropping it
/// kills Chromium and removes its profile.
pub struct Browser {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Events (`{"method", "params"}`) read while waiting for a response.
    events: VecDeque<Value>,
    process: Process,
}

/// `$GANTRY_CHROMIUM`, else /usr/bin/chromium, else `chromium` on PATH.
fn find_chromium() -> Result<Option<PathBuf>, BrowserError> {
    if let Some(path) = std::env::var_os("GANTRY_CHROMIUM").map(PathBuf::from) {
        return path
            .is_file()
            .then_some(Some(path.clone()))
            .ok_or(BrowserError::NotFound(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = std::iter::once(PathBuf::from("/usr/bin")).chain(std::env::split_paths(&path));
    Ok(dirs.find_map(|d| Some(d.join("chromium")).filter(|p| p.is_file())))
}

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots`, else the
/// workspace's `target/screenshots`.
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    target
        .unwrap_or_else(|| crate::workspace().join("target"))
        .join("screenshots")
}

/// Starts Chromium on a fresh profile; returns it with the websocket URL
/// of its page.
async fn start(exe: &Path) -> Result<(Process, String), BrowserError> {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("gantry-chromium-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).map_err(io(format!("create {}", profile.display())))?;
    let mut child = Command::new(exe)
        .args(FLAGS.split_whitespace())
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io(format!("start {}", exe.display())))?;
    // Stderr is drained for the whole run (a full pipe would stall
    // Chromium); its last lines are kept for error messages.
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Some(pipe) = child.stderr.take() {
        let (tail, mut tx) = (stderr.clone(), Some(tx));
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    tx.take().map(|tx| tx.send(url.trim().to_string()));
                }
                if let Ok(mut tail) = tail.lock() {
                    tail.push_back(line);
                    if tail.len() > 20 {
                        tail.pop_front();
                    }
                }
            }
        });
    }
    let process = Process {
        child,
        profile,
        stderr,
    };
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    let fail = |p: &Process, why: String| BrowserError::Start(LAUNCH_TIMEOUT, why, p.stderr_tail());
    let Ok(Ok(browser_url)) = timeout_at(deadline, rx).await else {
        return Err(fail(&process, "no `DevTools listening on` line".into()));
    };
    // ws://127.0.0.1:PORT/devtools/browser/ID: the page is in /json/list.
    let host = browser_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    let list = format!("http://{host}/json/list");
    loop {
        let targets: Result<Vec<Value>, _> =
            async { reqwest::get(&list).await?.error_for_status()?.json().await }.await;
        let targets = targets.map_err(|e| fail(&process, format!("GET {list}: {e}")))?;
        let page = targets.iter().find(|t| t["type"] == "page");
        if let Some(url) = page.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
            return Ok((process, url.to_string()));
        }
        if Instant::now() > deadline {
            return Err(fail(&process, format!("no page in {list}: {targets:?}")));
        }
        sleep(Duration::from_millis(100)).await;
    }
}

impl Browser {
    /// Starts headless Chromium on about:blank; `None` (the reason on
    /// stderr) when there is no Chromium on this machine.
    pub async fn launch() -> Result<Option<Browser>, BrowserError> {
        let Some(exe) = find_chromium()? else {
            eprintln!(
                "browser test not run: no chromium (install Debian's, or set GANTRY_CHROMIUM)"
            );
            return Ok(None);
        };
        let (process, url) = start(&exe).await?;
        let connect = timeout(CALL_TIMEOUT, tokio_tungstenite::connect_async(url.as_str())).await;
        let what = format!("the websocket {url}");
        let (ws, _) = connect.map_err(|_| BrowserError::Timeout {
            what,
            waited: CALL_TIMEOUT,
        })??;
        let mut browser = Browser {
            ws,
            next_id: 0,
            events: VecDeque::new(),
            process,
        };
        // Lifecycle events tell goto its own load. A headless page is not
        // focused (document.hasFocus() is false) unless that is emulated.
        for method in ["Page.enable", "Runtime.enable"] {
            browser.call(method, json!({})).await?;
        }
        for method in [
            "Page.setLifecycleEventsEnabled",
            "Emulation.setFocusEmulationEnabled",
        ] {
            browser.call(method, json!({"enabled": true})).await?;
        }
        Ok(Some(browser))
    }

    /// The next JSON message from the page; `what` names the wait.
    async fn next_message(&mut self, waited: Duration, what: &str) -> Result<Value, BrowserError> {
        let deadline = Instant::now() + waited;
        loop {
            let frame = timeout_at(deadline, self.ws.next()).await;
            let what = what.to_string();
            match frame.map_err(|_| BrowserError::Timeout { what, waited })? {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    let cut: String = text.chars().take(200).collect();
                    let bad = |e| protocol("DevTools", format!("unreadable message ({e}): {cut}"));
                    return serde_json::from_str(text).map_err(bad);
                }
                Some(Ok(Message::Close(_))) | None => {
                    return Err(BrowserError::Closed(self.process.stderr_tail()));
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends one command and returns its result; events read meanwhile
    /// are queued.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.next_id += 1;
        let id = self.next_id;
        let text = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(text)).await?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut msg = self
                .next_message(left, &format!("the response to {method}"))
                .await?;
            if msg["id"] == id {
                return match msg.get("error") {
                    Some(error) => Err(protocol(method, error.to_string())),
                    None => Ok(msg["result"].take()),
                };
            }
            if msg.get("method").is_some() {
                if self.events.len() >= 1000 {
                    self.events.pop_front();
                }
                self.events.push_back(msg);
            }
        }
    }

    /// Loads `url` and waits for its load event (that navigation's own,
    /// by loader id, not a late one of the page before).
    pub async fn goto(&mut self, url: &str) -> Result<(), BrowserError> {
        self.events.clear();
        let nav = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(error) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(protocol(&format!("Page.navigate to {url}"), error));
        }
        let Some(loader) = nav.get("loaderId").cloned() else {
            return Ok(()); // a same-document navigation has no load event
        };
        let is_load = |e: &Value| {
            let p = &e["params"];
            e["method"] == "Page.lifecycleEvent" && p["name"] == "load" && p["loaderId"] == loader
        };
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while !self.events.iter().any(is_load) {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .next_message(left, &format!("the load event of {url}"))
                .await?;
            self.events.push_back(msg);
        }
        self.events.clear();
        Ok(())
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its
    /// value as JSON; `undefined` is `null`.
    pub async fn eval(&mut self, js: &str) -> Result<Value, BrowserError> {
        let params = json!({"expression": js, "returnByValue": true, "awaitPromise": true});
        let mut out = self.call("Runtime.evaluate", params).await?;
        if let Some(ex) = out.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or(ex["text"].as_str());
            let text = text.unwrap_or("exception").to_string();
            return Err(BrowserError::Js {
                js: js.to_string(),
                text,
            });
        }
        Ok(out["result"]["value"].take())
    }

    /// Polls `js_condition` until it is truthy. An exception counts as
    /// false (the element may not be there yet); the last one is told.
    pub async fn wait_for(
        &mut self,
        js_condition: &str,
        waited: Duration,
    ) -> Result<(), BrowserError> {
        let deadline = Instant::now() + waited;
        let mut last = String::new();
        loop {
            match self.eval(&format!("!!({js_condition})")).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(BrowserError::Js { text, .. }) => last = format!(" (last exception: {text})"),
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                let what = format!("`{js_condition}`{last}");
                return Err(BrowserError::Timeout { what, waited });
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes a PNG of the viewport to `<screenshots_dir>/<name>.png`.
    pub async fn screenshot(&mut self, name: &str) -> Result<PathBuf, BrowserError> {
        const METHOD: &str = "Page.captureScreenshot";
        let out = self.call(METHOD, json!({"format": "png"})).await?;
        let data = out["data"]
            .as_str()
            .ok_or_else(|| protocol(METHOD, "no data"))?;
        let png = base64::engine::general_purpose::STANDARD.decode(data);
        let png = png.map_err(|e| protocol(METHOD, format!("bad base64: {e}")))?;
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(io(format!("write {}", path.display())))?;
        Ok(path)
    }

    /// Emulates a `width`x`height` CSS-pixel viewport (a phone's when
    /// `mobile`, which honours the page's `<meta name=viewport>`).
    pub async fn viewport(
        &mut self,
        width: u32,
        height: u32,
        mobile: bool,
    ) -> Result<(), BrowserError> {
        let params =
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
        self.call("Emulation.setDeviceMetricsOverride", params)
            .await
            .map(drop)
    }

    /// Presses and releases a key: "Tab", "Enter", "Shift+Tab", "Space"...
    pub async fn press(&mut self, key: &str) -> Result<(), BrowserError> {
        let unknown = || BrowserError::Key(key.to_string());
        let (mods, name) = key.rsplit_once('+').unwrap_or(("", key));
        let mut modifiers = 0;
        for m in mods.split('+').filter(|m| !m.is_empty()) {
            let bit = [("Alt", 1), ("Control", 2), ("Meta", 4), ("Shift", 8)]
                .iter()
                .find(|b| b.0 == m);
            modifiers |= bit.ok_or_else(unknown)?.1;
        }
        let found = KEYS.iter().find(|k| k.0 == name || k.1 == name);
        let &(key_name, code, vk, text) = found.ok_or_else(unknown)?;
        let down = if text.is_empty() {
            "rawKeyDown"
        } else {
            "keyDown"
        };
        for kind in [down, "keyUp"] {
            let text = if kind == "keyUp" { "" } else { text };
            let params = json!({"type": kind, "key": key_name, "code": code, "modifiers": modifiers,
                "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk, "text": text});
            self.call("Input.dispatchKeyEvent", params).await?;
        }
        Ok(())
    }

    /// Emulates `prefers-color-scheme: dark` (or light).
    pub async fn emulate_dark(&mut self, dark: bool) -> Result<(), BrowserError> {
        let scheme = if dark { "dark" } else { "light" };
        let params = json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]});
        self.call("Emulation.setEmulatedMedia", params)
            .await
            .map(drop)
    }
}
