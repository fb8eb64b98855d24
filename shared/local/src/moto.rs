//! The moto server, started on a free loopback port for `gantry dev` and the
//! tests, and stopped when dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::proxy::Proxy;

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("could not start {program}: {source}. Install it with: pip install 'moto[server]'")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("no free loopback port: {0}")]
    Port(std::io::Error),
    #[error("cannot start the proxy in front of moto: {0}")]
    Proxy(std::io::Error),
    #[error("moto server did not answer on {endpoint} within {seconds} s")]
    NotReady { endpoint: String, seconds: u64 },
}

/// A running moto server, behind the proxy that makes its CodeBuild
/// answers readable by the Rust SDK (see [`crate::proxy`]).
pub struct Moto {
    child: Child,
    proxy: Proxy,
}

/// A port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

impl Moto {
    /// Starts `moto_server` (or `$MOTO_SERVER`) on a free port and waits
    /// until it accepts connections.
    pub async fn start() -> Result<Moto, MotoError> {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port().map_err(MotoError::Port)?;
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| MotoError::Spawn {
                program: program.clone(),
                source,
            })?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        let limit = Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                let proxy = Proxy::start(&endpoint, false)
                    .await
                    .map_err(MotoError::Proxy)?;
                return Ok(Moto { child, proxy });
            }
            if started.elapsed() > limit {
                return Err(MotoError::NotReady {
                    endpoint,
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

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
