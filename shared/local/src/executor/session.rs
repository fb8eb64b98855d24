//! A shell the build's commands run in. Version 0.2 keeps one session for
//! the whole build, so `cd`, variables and functions of one command are
//! there for the next, as in CodeBuild; version 0.1 starts one per command.
//!
//! Commands go to the shell's standard input, each in a `{ …; }` group
//! whose own input is `/dev/null` (a command that reads its input must not
//! eat the commands after it), followed by a line that prints a random
//! marker and the group's exit status. Output (standard error merged) is
//! read line by line up to the marker.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The command's exit status.
    Status(i32),
    /// The shell itself exited (an `exit` in a command, `set -e`): its
    /// status, if it had one. The session is gone.
    ShellExited(Option<i32>),
    /// The deadline passed; the shell and everything it started is killed.
    TimedOut,
    /// The build was stopped (a newer commit superseded it): killed too.
    Stopped,
}

/// What ends a command early: the build's deadline, or a stop.
#[derive(Debug, Clone)]
pub struct Limit {
    pub deadline: Instant,
    /// Turns `true` when the build is to stop.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Limit {
    /// Waits until the command must end, and says why.
    async fn reached(&mut self) -> Ended {
        let stopped = async {
            match self.stop.as_mut() {
                // A dropped sender never stops the build.
                Some(stop) => {
                    let stopped = stop.wait_for(|s| *s).await.is_ok();
                    if !stopped {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(self.deadline) => Ended::TimedOut,
            () = stopped => Ended::Stopped,
        }
    }
}

pub struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    marker: String,
    gone: bool,
    /// The container the shell runs in, when it is one.
    container: Option<String>,
}

/// Where a build's shell runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Place {
    /// On this machine, as the current user.
    #[default]
    Host,
    /// In a new container of `image` (by the `docker` command), as the
    /// image's user, with the source directory mounted at the same path.
    Docker { image: String },
}

/// What the `docker` command itself needs from the caller's environment
/// (never passed into the container).
const DOCKER_CLIENT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "XDG_RUNTIME_DIR",
];

impl Session {
    /// Starts `shell` in `dir` with exactly `env` as its environment, at
    /// `place`; `name` names its container.
    pub async fn start(
        shell: &str,
        dir: &Path,
        env: &[(String, String)],
        marker: &str,
        place: &Place,
        name: &str,
    ) -> std::io::Result<Session> {
        let mut container = None;
        let mut command = match place {
            Place::Host => {
                let mut command = Command::new(shell);
                command.current_dir(dir).env_clear();
                command
            }
            Place::Docker { image } => {
                let mut command = Command::new(docker_program());
                let mount = format!("{}:{}", dir.display(), dir.display());
                command
                    .args(["run", "--rm", "-i", "--pull=never", "--name", name])
                    .args(["-v", &mount, "-w"])
                    .arg(dir);
                // `-e NAME` takes the value from the docker command's own
                // environment: no value is on a command line `ps` shows.
                for (k, _) in env {
                    command.args(["-e", k]);
                }
                command.arg(image).arg(shell).env_clear().envs(
                    DOCKER_CLIENT_ENV
                        .iter()
                        .filter_map(|k| Some((*k, std::env::var_os(k)?))),
                );
                container = Some(name.to_owned());
                command
            }
        };
        command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // Its own process group: a timeout kills what the build started.
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other(
                "the shell has no standard input or output",
            ));
        };
        let mut session = Session {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            marker: marker.to_owned(),
            gone: false,
            container,
        };
        session.write("exec 2>&1\n").await?;
        Ok(session)
    }

    async fn write(&mut self, text: &str) -> std::io::Result<()> {
        self.stdin.write_all(text.as_bytes()).await?;
        self.stdin.flush().await
    }

    /// Runs `command`, handing each line of its output to `line`.
    pub async fn run(
        &mut self,
        command: &str,
        limit: &mut Limit,
        line: &mut (dyn FnMut(&str) + Send),
    ) -> std::io::Result<Ended> {
        if self.gone {
            return Ok(Ended::ShellExited(None));
        }
        let script = format!(
            "{{ {command}\n}} </dev/null\nprintf '%s %s\\n' '{}' \"$?\"\n",
            self.marker
        );
        if self.write(&script).await.is_err() {
            return self.exited().await;
        }
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = tokio::select! {
                read = self.stdout.read_until(b'\n', &mut buf) => Ok(read),
                why = limit.reached() => Err(why),
            };
            let n = match read {
                Err(why) => {
                    self.kill();
                    return Ok(why);
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return self.exited().await;
            }
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\n', '\r']);
            // The marker starts a line, or ends the last one when the
            // output did not end with a line break.
            if let Some(at) = text.find(self.marker.as_str())
                && let Ok(status) = text[at + self.marker.len()..].trim().parse::<i32>()
            {
                if at > 0 {
                    line(&text[..at]);
                }
                return Ok(Ended::Status(status));
            }
            line(text);
        }
    }

    /// The values of `names` in the session, for `exported-variables`:
    /// hex on the wire, so any value comes back whole.
    pub async fn values(
        &mut self,
        names: &[String],
        limit: &mut Limit,
    ) -> std::io::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for name in names {
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let mut hex = String::new();
            let command = format!(
                "printf '%s' \"${{{name}-}}\" | od -An -v -tx1 | tr -d ' \\n'; printf '\\n'"
            );
            let ended = self
                .run(&command, limit, &mut |l: &str| hex.push_str(l.trim()))
                .await?;
            if ended != Ended::Status(0) {
                continue;
            }
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok())
                .collect();
            out.push((name.clone(), String::from_utf8_lossy(&bytes).into_owned()));
        }
        Ok(out)
    }

    async fn exited(&mut self) -> std::io::Result<Ended> {
        self.gone = true;
        let status = self.child.wait().await?;
        Ok(Ended::ShellExited(status.code()))
    }

    /// Kills the shell and its process group.
    pub fn kill(&mut self) {
        self.gone = true;
        // A container outlives its `docker run`: it is removed by name.
        if let Some(name) = &self.container {
            let _ = std::process::Command::new(docker_program())
                .args(["rm", "-f", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        #[cfg(unix)]
        if let Some(pid) = self.child.id() {
            // `kill -KILL -<pgid>`: the whole group, grandchildren included.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.start_kill();
    }

    /// Ends the session: its input closes and the shell exits.
    pub async fn close(mut self) {
        if !self.gone {
            let _ = self.write("exit 0\n").await;
            let _ = self.child.wait().await;
        }
    }
}

/// The `docker` program, found on the caller's `PATH` (the build's own
/// variables may change the `PATH` the command runs with).
pub fn docker_program() -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("docker"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| "docker".into())
}
