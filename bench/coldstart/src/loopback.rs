//! A loopback HTTP/1 server: the runtime API and the stub both are one.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};

use crate::HarnessError;

/// Binds a free loopback port and answers every request with `route`
/// (given `state`), each connection on its own task, until the returned
/// task is aborted.
pub async fn serve<S, F, Fut>(
    what: &str,
    state: Arc<S>,
    route: F,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HarnessError>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<hyper::body::Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| HarnessError::Io(format!("bind {what}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| HarnessError::Io(format!("{what} address"), e))?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(route(state, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, task))
}
