//! A local HTTP sink for `gantry dev`: stands for GitHub's status API and
//! the chat webhooks, prints each request it receives on one line, and
//! answers as they do (201 for a status, 200 otherwise).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use tokio::net::TcpListener;

/// Serves the sink on `listener` until the task is dropped; each request
/// is printed as `sink: METHOD PATH BODY`.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let (parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&body);
                println!(
                    "  sink: {} {} {}",
                    parts.method,
                    parts.uri.path(),
                    text.trim()
                );
                let status = if parts.uri.path().contains("/statuses/") {
                    201
                } else {
                    200
                };
                let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                *response.status_mut() =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                Ok::<_, Infallible>(response)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}
