//! The webhook handler over plain HTTP, as a function URL serves it: every
//! method and path reaches the handler.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use gantry_webhook::{Deps, Reply, handle};

async fn answer(
    deps: Arc<Deps>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // One byte over the limit is enough for the handler to answer 413.
    let limit = deps.max_body_bytes.saturating_add(1);
    let reply = match Limited::new(body, limit).collect().await {
        Ok(collected) => handle(&deps, &parts.headers, &collected.to_bytes()).await,
        Err(_) => Reply {
            status: 413,
            body: serde_json::json!({ "outcome": "refused", "reason": format!("payload over the {}-byte limit", deps.max_body_bytes) })
                .to_string(),
        },
    };
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Serves `deps` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, deps: Arc<Deps>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let deps = deps.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(deps.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
