//! A minimal Lambda Runtime API on loopback: the 2018-06-01 protocol a
//! custom runtime (`provided.al2023`) speaks.
//!
//! - `GET  /2018-06-01/runtime/invocation/next`: long poll for the next event;
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: the function's answer;
//! - `POST /2018-06-01/runtime/invocation/{id}/error`: a failed invocation;
//! - `POST /2018-06-01/runtime/init/error`: the function could not start.
//!
//! The harness holds the other end: it waits for a `next` request (the
//! moment the function is ready), hands an event over, and waits for the
//! response, each step with the instant it happened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::HarnessError;

const PREFIX: &str = "/2018-06-01/runtime";

/// One event for the function.
pub struct Invocation {
    pub request_id: String,
    pub body: Vec<u8>,
    /// The function's timeout: the deadline Lambda would give.
    pub timeout: Duration,
}

/// What the function said about one invocation, or about its start.
#[derive(Debug)]
pub enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
    InitError(Vec<u8>),
}

#[derive(Debug)]
pub struct Answer {
    pub at: Instant,
    pub request_id: Option<String>,
    pub outcome: Outcome,
}

/// A function waiting in `next`: the instant it asked, and where its event goes.
struct Waiting {
    at: Instant,
    reply: oneshot::Sender<Invocation>,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    next: Mutex<mpsc::Receiver<Waiting>>,
    answers: Mutex<mpsc::Receiver<Answer>>,
    /// A `next` request seen by [`RuntimeApi::ready`], not yet answered.
    parked: Mutex<Option<Waiting>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    next: mpsc::Sender<Waiting>,
    answers: mpsc::Sender<Answer>,
    function_arn: String,
}

impl RuntimeApi {
    pub async fn start(function_arn: String) -> Result<RuntimeApi, HarnessError> {
        let (next_tx, next_rx) = mpsc::channel(4);
        let (answer_tx, answer_rx) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            next: next_tx,
            answers: answer_tx,
            function_arn,
        });
        let (addr, task) =
            crate::loopback::serve("the runtime API", shared, |shared, req| async move {
                route(&shared, req).await
            })
            .await?;
        Ok(RuntimeApi {
            addr,
            next: Mutex::new(next_rx),
            answers: Mutex::new(answer_rx),
            parked: Mutex::new(None),
            task,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Throws away what a killed process left behind: a `next` it was
    /// waiting in, an answer nobody read.
    pub async fn reset(&self) {
        self.parked.lock().await.take();
        while self.next.lock().await.try_recv().is_ok() {}
        while self.answers.lock().await.try_recv().is_ok() {}
    }

    /// Waits until the function asks for an event; the instant it asked.
    /// An init error ends the wait with the function's message.
    pub async fn ready(&self, timeout: Duration) -> Result<Instant, HarnessError> {
        let waiting = self.wait_next(timeout).await?;
        let at = waiting.at;
        // Put it back: `invoke` hands it the event.
        *self.parked.lock().await = Some(waiting);
        Ok(at)
    }

    async fn wait_next(&self, timeout: Duration) -> Result<Waiting, HarnessError> {
        if let Some(w) = self.parked.lock().await.take() {
            return Ok(w);
        }
        let mut next = self.next.lock().await;
        let mut answers = self.answers.lock().await;
        tokio::select! {
            w = next.recv() => w.ok_or(HarnessError::RuntimeClosed),
            a = answers.recv() => match a {
                Some(Answer { outcome: Outcome::InitError(body), .. }) => {
                    Err(HarnessError::InitError(String::from_utf8_lossy(&body).into_owned()))
                }
                Some(other) => Err(HarnessError::Unexpected(format!("{other:?}"))),
                None => Err(HarnessError::RuntimeClosed),
            },
            _ = tokio::time::sleep(timeout) => Err(HarnessError::Timeout("the function's next request")),
        }
    }

    /// Hands `invocation` to the function (waiting for it to ask, if it has
    /// not yet) and waits for its answer. Returns the instant the event was
    /// handed over and the answer.
    pub async fn invoke(
        &self,
        invocation: Invocation,
        timeout: Duration,
    ) -> Result<(Instant, Answer), HarnessError> {
        let waiting = self.wait_next(timeout).await?;
        let request_id = invocation.request_id.clone();
        let handed = Instant::now();
        waiting
            .reply
            .send(invocation)
            .map_err(|_| HarnessError::RuntimeClosed)?;
        let mut answers = self.answers.lock().await;
        let answer = tokio::time::timeout(timeout, answers.recv())
            .await
            .map_err(|_| HarnessError::Timeout("the function's response"))?
            .ok_or(HarnessError::RuntimeClosed)?;
        if answer.request_id.as_deref() != Some(request_id.as_str()) {
            return Err(HarnessError::Unexpected(format!(
                "answer for {:?}, expected {request_id}",
                answer.request_id
            )));
        }
        Ok((handed, answer))
    }
}

fn respond(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

async fn route(shared: &Shared, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return respond(StatusCode::NOT_FOUND, "{}");
    };
    let is_get = req.method() == http::Method::GET;
    if is_get && rest == "/invocation/next" {
        let (tx, rx) = oneshot::channel();
        if shared.next.send(Waiting { at, reply: tx }).await.is_err() {
            return respond(StatusCode::INTERNAL_SERVER_ERROR, "{}");
        }
        let Ok(invocation) = rx.await else {
            // The harness is done with this process.
            return respond(StatusCode::GONE, "{}");
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() + invocation.timeout.as_millis())
            .unwrap_or_default();
        let mut r = Response::new(Full::new(Bytes::from(invocation.body)));
        let h = r.headers_mut();
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        };
        put("lambda-runtime-aws-request-id", invocation.request_id);
        put("lambda-runtime-deadline-ms", deadline.to_string());
        put(
            "lambda-runtime-invoked-function-arn",
            shared.function_arn.clone(),
        );
        put(
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into(),
        );
        put("content-type", "application/json".into());
        return r;
    }
    if req.method() != http::Method::POST {
        return respond(StatusCode::NOT_FOUND, "{}");
    }
    let (request_id, kind) = if rest == "/init/error" {
        (None, 2)
    } else if let Some(id) = rest
        .strip_prefix("/invocation/")
        .and_then(|r| r.strip_suffix("/response"))
    {
        (Some(id.to_owned()), 0)
    } else if let Some(id) = rest
        .strip_prefix("/invocation/")
        .and_then(|r| r.strip_suffix("/error"))
    {
        (Some(id.to_owned()), 1)
    } else {
        return respond(StatusCode::NOT_FOUND, "{}");
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return respond(StatusCode::BAD_REQUEST, "{}"),
    };
    let at = if kind == 0 { at } else { Instant::now() };
    let outcome = match kind {
        0 => Outcome::Response(body),
        1 => Outcome::Error(body),
        _ => Outcome::InitError(body),
    };
    let _ = shared
        .answers
        .send(Answer {
            at,
            request_id,
            outcome,
        })
        .await;
    respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}
