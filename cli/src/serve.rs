//! The webhook handler over plain HTTP, as a function URL serves it: every
//! method and path reaches the handler, but for the build page's: GET and
//! HEAD of `/builds/…` and `/repos/…` are the build-page function's (its
//! own function URL when deployed).

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

/// The webhook, and the build page when `gantry dev` serves one.
pub struct Served {
    pub webhook: Deps,
    pub pages: Option<gantry_build_page::Deps>,
}

fn is_page(parts: &http::request::Parts) -> bool {
    let path = parts.uri.path();
    (parts.method == http::Method::GET || parts.method == http::Method::HEAD)
        && (path.starts_with("/builds/") || path.starts_with("/repos/"))
}

async fn page(
    deps: &gantry_build_page::Deps,
    parts: &http::request::Parts,
) -> Response<Full<Bytes>> {
    let page = gantry_build_page::serve(
        deps,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or_default(),
        gantry_core::events::now_ms() / 1000,
    )
    .await;
    let mut response = Response::new(Full::new(Bytes::from(page.body)));
    *response.status_mut() =
        http::StatusCode::from_u16(page.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in page.headers {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn answer(
    served: Arc<Served>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    if let Some(pages) = &served.pages
        && is_page(&parts)
    {
        return Ok(page(pages, &parts).await);
    }
    let deps = &served.webhook;
    // One byte over the limit is enough for the handler to answer 413.
    let limit = deps.max_body_bytes.saturating_add(1);
    let reply = match Limited::new(body, limit).collect().await {
        Ok(collected) => handle(deps, &parts.headers, &collected.to_bytes()).await,
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
pub async fn serve(listener: TcpListener, deps: Arc<Served>) {
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
