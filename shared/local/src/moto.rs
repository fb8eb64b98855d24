//! The moto server, started on a free loopback port for `gantry dev` and the
//! tests, and stopped when dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
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
}

/// A running moto server, behind the proxy that makes its CodeBuild
/// answers readable by the Rust SDK (see [`crate::proxy`]).
pub struct Moto {
    child: Child,
    proxy: Proxy,
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
                return Ok(Moto { child, proxy });
            }
            if started.elapsed() > limit {
                return Err(MotoError::NotReady {
                    seconds: limit.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
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

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::announced_port;

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
