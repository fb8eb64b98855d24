//! The moto server, started on a free loopback port for `gantry dev` and the
//! tests, and stopped when dropped: `moto_server` itself for `gantry dev`'s
//! one server, or a fork of a server with moto already imported for a
//! process that starts many (the tests' local stacks, one each).

use std::io::{BufRead, BufReader as StdBufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proxy::Proxy;

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("could not start {program}: {source}. Install it with: pip install 'moto[server]'")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("moto server's output could not be read: {0}")]
    Output(std::io::Error),
    #[error("moto server gave no output stream")]
    NoOutput,
    #[error("moto server exited before it said which port it listens on")]
    Exited,
    #[error("cannot start the proxy in front of moto: {0}")]
    Proxy(std::io::Error),
    #[error("moto server did not start listening within {seconds} s")]
    NotReady { seconds: u64 },
    #[error(
        "could not start the moto fork server with {program}: {source}. Set MOTO_PYTHON to the Python moto is installed in"
    )]
    ForkServerSpawn {
        program: String,
        source: std::io::Error,
    },
    #[error(
        "the moto fork server ({program}) exited; if it could not import moto, install it with pip install 'moto[server]' or set MOTO_PYTHON to the Python that has it"
    )]
    ForkServerGone { program: String },
    #[error("talking to the moto fork server: {0}")]
    ForkServerIo(std::io::Error),
    #[error("the moto fork server answered {0:?}, not a pid and a port")]
    ForkServerAnswer(String),
}

/// A running moto server, behind the proxy that makes its CodeBuild
/// answers readable by the Rust SDK (see [`crate::proxy`]).
pub struct Moto {
    process: Process,
    proxy: Proxy,
}

/// How the server runs, so it is stopped the same way.
enum Process {
    /// `moto_server`, killed when the handle drops.
    Spawned(Child),
    /// A fork of the fork server, which kills it when asked.
    Forked(u32),
}

/// The port in werkzeug's start-up line ` * Running on http://127.0.0.1:PORT`.
fn announced_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("Running on http://127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|port| *port != 0)
}

impl Moto {
    /// Starts `moto_server` (or `$MOTO_SERVER`) on a port the server binds
    /// itself (`-p 0`) and reads back from its start-up line, so no other
    /// listener can take the port in between: a port picked here and handed
    /// over could be bound by another test's proxy first, and this stack
    /// would then silently talk to that test's moto.
    pub async fn start() -> Result<Moto, MotoError> {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let mut child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| MotoError::Spawn {
                program: program.clone(),
                source,
            })?;
        let limit = Duration::from_secs(60);
        let stderr = child.stderr.take().ok_or(MotoError::NoOutput)?;
        let mut lines = BufReader::new(stderr).lines();
        let port = tokio::time::timeout(limit, async {
            while let Some(line) = lines.next_line().await.map_err(MotoError::Output)? {
                if let Some(port) = announced_port(&line) {
                    return Ok(port);
                }
            }
            Err(MotoError::Exited)
        })
        .await
        .map_err(|_| MotoError::NotReady {
            seconds: limit.as_secs(),
        })??;
        // The server logs every request to stderr: keep reading so it never
        // blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let endpoint = format!("http://127.0.0.1:{port}");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                let proxy = Proxy::start(&endpoint, false)
                    .await
                    .map_err(MotoError::Proxy)?;
                return Ok(Moto {
                    process: Process::Spawned(child),
                    proxy,
                });
            }
            if started.elapsed() > limit {
                return Err(MotoError::NotReady {
                    seconds: limit.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A server of its own (a clean account), forked from this process's
    /// moto fork server, which is started on the first call: moto's import
    /// (about 0.45 s of CPU, and 1.2 s more for SSM's on its first request)
    /// is paid once per process instead of once per server. The fork
    /// server runs `$MOTO_PYTHON` (default `python3`), which must have moto.
    /// It ends with this process; each fork ends with its handle.
    pub async fn fork() -> Result<Moto, MotoError> {
        let (pid, port) = tokio::task::spawn_blocking(ForkServer::spawn)
            .await
            .map_err(|e| MotoError::ForkServerIo(std::io::Error::other(e)))??;
        // The socket listens already (bound before the fork).
        match Proxy::start(&format!("http://127.0.0.1:{port}"), false).await {
            Ok(proxy) => Ok(Moto {
                process: Process::Forked(pid),
                proxy,
            }),
            Err(e) => {
                ForkServer::stop(pid);
                Err(MotoError::Proxy(e))
            }
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        self.proxy.endpoint()
    }

    /// The fault table of the proxy in front of the server: what is
    /// injected here answers the next matching requests instead of moto.
    #[cfg(feature = "faults")]
    pub fn faults(&self) -> &crate::proxy::Faults {
        self.proxy.faults()
    }

    /// Stops the server: a spawned one is killed and waited for here; a
    /// forked one is killed and waited for by the fork server, asked on drop.
    pub async fn stop(mut self) {
        match &mut self.process {
            Process::Spawned(child) => {
                let _ = child.kill().await;
            }
            Process::Forked(_) => {}
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Process::Forked(pid) = self.process {
            ForkServer::stop(pid);
        }
    }
}

/// The moto services the local stack calls, imported by the fork server
/// before it forks anything (moto's backend names).
const FORKED_SERVICES: &[&str] = &[
    "s3",
    "ssm",
    "events",
    "sqs",
    "codebuild",
    "logs",
    "secretsmanager",
    "sts",
    "codepipeline",
];

/// This process's moto fork server (`moto_forks.py`): one request line
/// and, for `spawn`, one answer line at a time, under the lock.
struct ForkServer {
    program: String,
    stdin: ChildStdin,
    stdout: StdBufReader<ChildStdout>,
    /// Never waited on: it exits when this process does (end of its input).
    _child: std::process::Child,
}

static FORK_SERVER: Mutex<Option<ForkServer>> = Mutex::new(None);

impl ForkServer {
    fn start(program: String) -> Result<ForkServer, MotoError> {
        let mut child = std::process::Command::new(&program)
            .arg("-c")
            .arg(include_str!("moto_forks.py"))
            .args(FORKED_SERVICES)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| MotoError::ForkServerSpawn {
                program: program.clone(),
                source,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(MotoError::NoOutput);
        };
        let mut server = ForkServer {
            program,
            stdin,
            stdout: StdBufReader::new(stdout),
            _child: child,
        };
        match server.answer()?.as_str() {
            "ready" => Ok(server),
            other => Err(MotoError::ForkServerAnswer(other.to_owned())),
        }
    }

    /// The next line the fork server writes.
    fn answer(&mut self) -> Result<String, MotoError> {
        let mut line = String::new();
        let read = self
            .stdout
            .read_line(&mut line)
            .map_err(MotoError::ForkServerIo)?;
        if read == 0 {
            return Err(MotoError::ForkServerGone {
                program: self.program.clone(),
            });
        }
        Ok(line.trim_end().to_owned())
    }

    /// Forks a server; its pid and port.
    fn spawn() -> Result<(u32, u16), MotoError> {
        let mut slot = FORK_SERVER.lock().unwrap_or_else(PoisonError::into_inner);
        let server = match slot.take() {
            Some(server) => server,
            None => ForkServer::start(
                std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into()),
            )?,
        };
        let server = slot.insert(server);
        let answer = writeln!(server.stdin, "spawn")
            .map_err(MotoError::ForkServerIo)
            .and_then(|()| server.answer());
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                // Gone or confused: the next call starts a new one.
                *slot = None;
                return Err(e);
            }
        };
        forked_server(&answer).ok_or(MotoError::ForkServerAnswer(answer))
    }

    /// Asks the fork server to kill `pid` (it waits for it); nothing to do
    /// if the fork server is gone, since its forks went with it.
    fn stop(pid: u32) {
        let mut slot = FORK_SERVER.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = slot.as_mut() {
            let _ = writeln!(server.stdin, "stop {pid}");
        }
    }
}

/// The fork server's `<pid> <port>` answer.
fn forked_server(answer: &str) -> Option<(u32, u16)> {
    let (pid, port) = answer.split_once(' ')?;
    let port = port.parse().ok().filter(|port| *port != 0)?;
    Some((pid.parse().ok()?, port))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{ForkServer, Moto, MotoError, Process, announced_port, forked_server};

    /// Each fork is a server of its own (what one stack stores, another
    /// does not see), and a dropped one is gone, not left running.
    #[tokio::test]
    async fn forks_are_servers_of_their_own_and_go_when_dropped() {
        let a = Moto::fork()
            .await
            .expect("a fork (pip install 'moto[server]')");
        let b = Moto::fork().await.expect("another fork");
        let ssm = |moto: &Moto| {
            let endpoint = moto.endpoint().to_owned();
            async move { aws_sdk_ssm::Client::new(&crate::stack::sdk_config(&endpoint).await) }
        };
        let (ssm_a, ssm_b) = (ssm(&a).await, ssm(&b).await);
        ssm_a
            .put_parameter()
            .name("/only/in/a")
            .value("1")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .expect("stored in a");
        let in_a = ssm_a.describe_parameters().send().await.expect("a's list");
        let in_b = ssm_b.describe_parameters().send().await.expect("b's list");
        assert_eq!(in_a.parameters().len(), 1);
        assert_eq!(in_b.parameters().len(), 0, "b sees a's parameter");

        let Process::Forked(pid) = a.process else {
            panic!("not a fork");
        };
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        assert!(proc.exists());
        drop(a);
        let asked = Instant::now();
        while proc.exists() {
            assert!(
                asked.elapsed() < Duration::from_secs(10),
                "server {pid} still there after its handle went"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        b.stop().await;
    }

    #[test]
    fn a_fork_server_that_cannot_start_says_why() {
        let missing = ForkServer::start("/nonexistent/python3".into()).err();
        assert!(
            matches!(&missing, Some(MotoError::ForkServerSpawn { program, .. }) if program == "/nonexistent/python3"),
            "{missing:?}"
        );
        // A program that exits without answering, as a Python without moto does.
        let gone = ForkServer::start("true".into()).err();
        assert!(
            matches!(&gone, Some(MotoError::ForkServerGone { program }) if program == "true"),
            "{gone:?}"
        );
        let message = gone.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("MOTO_PYTHON"), "{message}");
    }

    #[test]
    fn a_fork_is_read_from_a_pid_and_a_port_only() {
        assert_eq!(forked_server("31101 44331"), Some((31101, 44331)));
        assert_eq!(forked_server("31101 0"), None);
        assert_eq!(forked_server("ready"), None);
        assert_eq!(forked_server("31101"), None);
        assert_eq!(forked_server("Traceback (most recent call last):"), None);
    }

    #[test]
    fn the_port_is_read_from_the_start_up_line_only() {
        assert_eq!(
            announced_port(" * Running on http://127.0.0.1:36375"),
            Some(36375)
        );
        assert_eq!(
            announced_port(" * Running on http://127.0.0.1:36375/ (Press CTRL+C)"),
            Some(36375)
        );
        assert_eq!(announced_port("Press CTRL+C to quit"), None);
        assert_eq!(announced_port(" * Running on http://127.0.0.1:0"), None);
        assert_eq!(
            announced_port("127.0.0.1 - - \"GET / HTTP/1.1\" 200 -"),
            None
        );
    }
}
