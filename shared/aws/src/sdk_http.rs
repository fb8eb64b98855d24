//! The AWS SDK's HTTP client: the same reqwest stack, on the process's one
//! TLS configuration, as Gantry's GitHub and chat clients.
//!
//! The SDK's own client (aws-smithy-http-client) builds a fresh rustls
//! configuration for every SDK client constructed, each time parsing the
//! whole trust store from PEM: four times in the webhook's cold start (S3,
//! SSM, EventBridge and the credential chain's STS), two thirds of its
//! init. Here every SDK client of a process sends through reqwest clients
//! that share the one configuration [`crate::tls`] built from roots read
//! once, and the binaries carry one HTTP stack instead of two.
//!
//! The SDK keeps what it owns: signing, retries, the operation and attempt
//! timeouts. This adapter does what a connector does: it sends the signed
//! request as it is (no redirects followed, no header added that the
//! signature covers), hands back the response unread, and says what kind
//! of failure a failure was, which decides whether the SDK retries it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// What a connector's settings change in a client: its connect and read
/// timeouts.
type Timeouts = (Option<Duration>, Option<Duration>);

/// An [`HttpClient`] for the SDK over reqwest clients made by `builder`,
/// one per distinct timeout setting, each shared by every SDK client that
/// asks with that setting (one connection pool per endpoint, not per call).
#[derive(Clone)]
pub struct SdkHttp {
    builder: Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
    clients: Arc<Mutex<HashMap<Timeouts, Connector>>>,
}

impl std::fmt::Debug for SdkHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkHttp").finish_non_exhaustive()
    }
}

impl SdkHttp {
    /// A client whose reqwest clients start from `builder` (which decides
    /// the TLS configuration).
    pub fn new(builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static) -> SdkHttp {
        SdkHttp {
            builder: Arc::new(builder),
            clients: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// As the SDK takes it.
    pub fn shared(self) -> SharedHttpClient {
        SharedHttpClient::new(self)
    }

    fn connector(&self, timeouts: Timeouts) -> Connector {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(timeouts)
            .or_insert_with(|| {
                let (connect, read) = timeouts;
                // The SDK follows no redirect itself (an S3 redirect is an
                // answer to read, and a followed one would carry the
                // signature elsewhere).
                let mut builder = (self.builder)().redirect(reqwest::redirect::Policy::none());
                if let Some(connect) = connect {
                    builder = builder.connect_timeout(connect);
                }
                if let Some(read) = read {
                    builder = builder.read_timeout(read);
                }
                match builder.build() {
                    Ok(client) => Connector::Ready(client),
                    Err(e) => Connector::Unusable(Arc::new(e.to_string())),
                }
            })
            .clone()
    }
}

impl HttpClient for SdkHttp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(
            self.connector((settings.connect_timeout(), settings.read_timeout())),
        )
    }
}

/// One reqwest client, or why none could be built (every request then
/// fails with the reason, as a connector error the SDK does not retry).
#[derive(Clone, Debug)]
enum Connector {
    Ready(reqwest::Client),
    Unusable(Arc<String>),
}

/// A failure that is no transport error: a request the SDK built that
/// reqwest cannot send, or a client that could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unsendable(String);

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match self {
            Connector::Ready(client) => client.clone(),
            Connector::Unusable(reason) => {
                let reason = format!("no HTTP client: {reason}");
                return HttpConnectorFuture::ready(Err(ConnectorError::other(
                    Box::new(Unsendable(reason)),
                    None,
                )));
            }
        };
        HttpConnectorFuture::new(async move {
            let request = to_reqwest(request)?;
            let response = client.execute(request).await.map_err(classify)?;
            let (parts, body) = http::Response::from(response).into_parts();
            HttpResponse::try_from(http::Response::from_parts(
                parts,
                SdkBody::from_body_1_x(body),
            ))
            .map_err(|e| ConnectorError::other(Box::new(e), None))
        })
    }
}

/// The SDK's signed request as reqwest sends it: same method, URI, headers
/// and bytes. An in-memory body is copied (it may be sent again on a
/// retry, by the SDK, from its own clone); a streaming one is streamed.
fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(Box::new(e)))?;
    let (parts, body) = request.into_parts();
    let body = match body.bytes() {
        Some(bytes) => reqwest::Body::from(bytes.to_vec()),
        None => reqwest::Body::wrap(body),
    };
    reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|e| ConnectorError::user(Box::new(e)))
}

/// The kind of a transport failure, which decides the SDK's retry: a
/// timeout, an I/O failure (refused, reset, closed mid-answer: transient),
/// or other (not retried).
fn classify(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        return ConnectorError::timeout(Box::new(e));
    }
    if e.is_connect() || is_io(&e) {
        return ConnectorError::io(Box::new(e));
    }
    ConnectorError::other(Box::new(e), None)
}

/// Whether an I/O error, or a connection hyper saw closed or cut short,
/// lies under `e`.
fn is_io(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled())
        {
            return true;
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What the loopback server does with the n-th connection (from 0).
    #[derive(Clone, Copy)]
    enum Act {
        /// Read the request, then close without a word.
        Cut,
        /// Read the request and never answer.
        Hang,
        /// Answer with this status line and headers, and an empty body.
        Answer(&'static str),
    }

    struct Server {
        port: u16,
        requests: Arc<Mutex<Vec<Vec<u8>>>>,
        connections: Arc<AtomicUsize>,
    }

    /// A plain HTTP/1.1 server on loopback acting as `script` says, one
    /// connection at a time; it keeps each whole request (head and body).
    async fn server(script: Vec<Act>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (kept, counted) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let act = script.get(n).copied().unwrap_or(Act::Cut);
                let kept = kept.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut tcp).await else {
                        return;
                    };
                    kept.lock().expect("lock").push(request);
                    match act {
                        Act::Cut => {}
                        Act::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                        Act::Answer(head) => {
                            let answer = format!("{head}\r\ncontent-length: 0\r\n\r\n");
                            let _ = tcp.write_all(answer.as_bytes()).await;
                            let _ = tcp.shutdown().await;
                        }
                    }
                });
            }
        });
        Server {
            port,
            requests,
            connections,
        }
    }

    /// One request, head and body (by its content-length).
    async fn read_request(tcp: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
        let mut request = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = tcp.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            request.extend_from_slice(&buf[..n]);
            let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                return Some(request);
            }
        }
    }

    fn s3(port: u16, timeouts: aws_config::timeout::TimeoutConfig) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .force_path_style(true)
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
            // The body as given, not aws-chunked with a trailing checksum.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .http_client(SdkHttp::new(reqwest::Client::builder).shared())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    fn no_timeouts() -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::disabled()
    }

    /// A connection cut before the answer is a transient failure: the SDK
    /// sends the request again, and the third attempt's answer counts.
    #[tokio::test]
    async fn a_connection_cut_before_the_answer_is_retried() {
        let server = server(vec![Act::Cut, Act::Cut, Act::Answer("HTTP/1.1 200 OK")]).await;
        s3(server.port, no_timeouts())
            .head_bucket()
            .bucket("b")
            .send()
            .await
            .expect("the third attempt is answered");
        assert_eq!(server.connections.load(Ordering::SeqCst), 3);
    }

    /// A refused connection is an I/O failure, said as one.
    #[tokio::test]
    async fn a_refused_connection_is_an_io_failure() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        let e = s3(port, no_timeouts())
            .head_bucket()
            .bucket("b")
            .send()
            .await
            .expect_err("nothing listens");
        assert_eq!(
            crate::describe_sdk_error(&e),
            "could not reach the service (connection failed)"
        );
    }

    /// A read timeout is a timeout, not some other failure.
    #[tokio::test]
    async fn a_silent_service_times_out() {
        let server = server(vec![Act::Hang; 3]).await;
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .read_timeout(Duration::from_millis(200))
            .build();
        let e = s3(server.port, timeouts)
            .head_bucket()
            .bucket("b")
            .send()
            .await
            .expect_err("no answer");
        assert_eq!(crate::describe_sdk_error(&e), "request timed out");
    }

    /// A redirect is the service's answer, handed back, never followed
    /// (a followed one would carry the signed request elsewhere).
    #[tokio::test]
    async fn a_redirect_is_answered_not_followed() {
        let elsewhere = server(vec![Act::Answer("HTTP/1.1 200 OK")]).await;
        let moved: &'static str = Box::leak(
            format!(
                "HTTP/1.1 301 Moved Permanently\r\nlocation: http://127.0.0.1:{}/b",
                elsewhere.port
            )
            .into_boxed_str(),
        );
        let server = server(vec![Act::Answer(moved)]).await;
        let e = s3(server.port, no_timeouts())
            .head_bucket()
            .bucket("b")
            .send()
            .await
            .expect_err("a 301 is no success");
        assert_eq!(crate::http_status(&e), Some(301));
        assert_eq!(elsewhere.connections.load(Ordering::SeqCst), 0);
    }

    /// The signed request arrives as signed: its headers and a streamed
    /// body (a file, as an upload sends one) byte for byte.
    #[tokio::test]
    async fn a_streamed_body_arrives_whole_with_its_signature() {
        let server = server(vec![Act::Answer("HTTP/1.1 200 OK")]).await;
        let dir = std::env::temp_dir().join(format!("gantry-sdk-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("body");
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &body).expect("write");
        let stream = aws_sdk_s3::primitives::ByteStream::from_path(&file)
            .await
            .expect("stream");
        s3(server.port, no_timeouts())
            .put_object()
            .bucket("b")
            .key("k")
            .body(stream)
            .send()
            .await
            .expect("stored");
        let _ = std::fs::remove_dir_all(&dir);
        let requests = server.requests.lock().expect("lock");
        let request = requests.first().expect("one request");
        let end = request
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
        assert!(head.starts_with("put /b/k"), "{head}");
        assert!(head.contains("authorization: aws4-hmac-sha256"), "{head}");
        assert!(head.contains("content-length: 200000"), "{head}");
        assert_eq!(&request[end + 4..], &body[..]);
    }
}
