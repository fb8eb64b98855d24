//! `gantry dev` as a second process, for the tests that drive it from
//! outside as a user would.
// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn gantry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
}

/// `git -C dir args…` as Mona; its output, trimmed. Fails the test if git
/// does.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Mona", "-c", "user.email=mona@example.com"])
        .args(args)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `gantry dev` and what it has printed so far.
pub struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Dev {
    /// `gantry dev --listen <listen> <extra…>`, with its own moto server,
    /// GitHub at `github_api` (loopback only in tests).
    pub fn start(listen: &str, extra: &[&str], github_api: &str) -> Dev {
        Dev::spawn(listen, extra, Some(github_api))
    }

    /// The same with no GITHUB_API_URL: gantry dev's own GitHub stand-in.
    #[allow(dead_code)] // not every test binary that shares this module uses it
    pub fn start_offline(listen: &str, extra: &[&str]) -> Dev {
        Dev::spawn(listen, extra, None)
    }

    fn spawn(listen: &str, extra: &[&str], github_api: Option<&str>) -> Dev {
        let mut command = gantry();
        command
            .args(["dev", "--listen", listen])
            .args(extra)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("GITHUB_TOKEN");
        match github_api {
            Some(url) => command.env("GITHUB_API_URL", url),
            None => command.env_remove("GITHUB_API_URL"),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gantry dev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Dev {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads what is printed until `done` holds of it (or `timeout`).
    pub fn read_until(&mut self, done: impl Fn(&[String]) -> bool, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => return,
            }
        }
    }

    pub fn line_with(&self, needle: &str) -> Option<&String> {
        self.seen.iter().find(|l| l.contains(needle))
    }

    /// The first line containing `needle`, waiting for it if need be.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        // Lines of different rules' queues may come in either order.
        self.read_until(|seen| seen.iter().any(|l| l.contains(needle)), timeout);
        match self.line_with(needle) {
            Some(line) => line.clone(),
            None => panic!(
                "gantry dev never printed {needle:?}; it printed:\n{}",
                self.seen.join("\n")
            ),
        }
    }
}

impl Dev {
    /// SIGTERM, then its exit status if it exited within `wait`.
    #[allow(dead_code)] // not every test binary that shares this module uses it
    pub fn terminate(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // Ctrl-C, so gantry dev stops the moto server it started; then
        // make sure.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
