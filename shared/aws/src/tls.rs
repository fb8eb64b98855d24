//! The trust roots, read once per process, for every HTTPS client of a
//! function: the AWS SDK's and Gantry's own (GitHub, the chat services).
//!
//! Each client used to read and parse the system's roots itself, on the
//! cold start's critical path: the SDK once, and every reqwest client
//! again. And with nothing configured, rustls-native-certs reads the
//! system's bundle file *and* the certificate directory beside it, which
//! holds the same certificates again (Debian: one file per certificate;
//! Amazon Linux: the bundle in two more forms): two or three times the
//! parsing. Here:
//! - `SSL_CERT_FILE` or `SSL_CERT_DIR`, when set, decide, as
//!   rustls-native-certs reads them (a layer's own CA bundle);
//! - otherwise the system's bundle file alone (the one openssl-probe
//!   finds, which the distribution keeps in step with the directory);
//! - otherwise the whole platform store.
//!
//! Verification is rustls' WebPKI verifier (chain and host name), on the
//! aws-lc crypto the rest of the stack uses.

use std::sync::{Arc, LazyLock};

use rustls::pki_types::CertificateDer;

/// The roots, once per process.
static ROOTS: LazyLock<Roots> = LazyLock::new(|| Roots::new(read_roots()));

/// Trust roots, parsed once: the certificates rustls accepts as trust
/// anchors (the SDK's client, given one it rejects, would panic), and the
/// store they make, which the reqwest clients' configuration shares.
struct Roots {
    certs: Vec<CertificateDer<'static>>,
    store: Arc<rustls::RootCertStore>,
}

impl Roots {
    fn new(found: Vec<CertificateDer<'static>>) -> Roots {
        let mut store = rustls::RootCertStore::empty();
        let certs = found
            .into_iter()
            .filter(|cert| store.add(cert.clone()).is_ok())
            .collect();
        Roots {
            certs,
            store: Arc::new(store),
        }
    }
}

fn read_roots() -> Vec<CertificateDer<'static>> {
    let configured =
        std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    if !configured && let Some(bundle) = openssl_probe::probe().cert_file {
        use rustls::pki_types::pem::PemObject;
        match CertificateDer::pem_file_iter(&bundle) {
            Ok(certs) => {
                let certs: Vec<_> = certs.filter_map(Result::ok).collect();
                if !certs.is_empty() {
                    return certs;
                }
            }
            Err(e) => {
                tracing::warn!(bundle = %bundle.display(), error = %e, "the system's trust bundle could not be read")
            }
        }
    }
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::warn!(errors = ?found.errors, "some trust roots could not be read");
    }
    found.certs
}

/// The shared configuration; `None` when no trust root could be read
/// (each client then builds reqwest's own verifier, which says why).
static CONFIG: LazyLock<Option<rustls::ClientConfig>> = LazyLock::new(|| config_from(&ROOTS));

/// The AWS SDK's HTTPS client on the same roots (the SDK's own, from
/// `aws-config`, when there are none: it then reads the platform's).
pub fn sdk_http_client() -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    sdk_http_client_with(&ROOTS)
}

/// The SDK's HTTPS client trusting `roots`.
fn sdk_http_client_with(
    roots: &Roots,
) -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::tls;
    if roots.certs.is_empty() {
        return None;
    }
    let mut pem = String::with_capacity(roots.certs.len() * 2048);
    for cert in &roots.certs {
        push_pem(&mut pem, cert);
    }
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem.into_bytes());
    let context = match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => context,
        Err(e) => {
            tracing::warn!(error = %e, "the SDK's TLS context was refused; it reads the roots itself");
            return None;
        }
    };
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https(),
    )
}

/// `cert` as a PEM block.
fn push_pem(out: &mut String, cert: &CertificateDer<'_>) {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
}

/// A client configuration trusting `roots`.
fn config_from(roots: &Roots) -> Option<rustls::ClientConfig> {
    if roots.store.is_empty() {
        tracing::warn!("no trust roots found; HTTPS clients use reqwest's own verifier");
        return None;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => Some(
            builder
                .with_root_certificates(roots.store.clone())
                .with_no_client_auth(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "TLS configuration refused; HTTPS clients use reqwest's own");
            None
        }
    }
}

fn builder_with(config: Option<&rustls::ClientConfig>) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    match config {
        Some(config) => builder.tls_backend_preconfigured(config.clone()),
        None => builder,
    }
}

/// A reqwest client builder on the process's one TLS configuration.
pub fn client_builder() -> reqwest::ClientBuilder {
    builder_with(CONFIG.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const CA: &str = include_str!("../tests/fixtures/test-ca.pem");
    const LEAF: &str = include_str!("../tests/fixtures/localhost.pem");
    const KEY: &str = include_str!("../tests/fixtures/localhost.key");

    /// An HTTPS server on loopback presenting `localhost`'s certificate,
    /// issued by the test CA; it answers `ok` to every request.
    async fn server() -> u16 {
        server_counting(Arc::new(std::sync::atomic::AtomicUsize::new(0))).await
    }

    /// [`server`], counting the requests that arrive over TLS.
    async fn server_counting(requests: Arc<std::sync::atomic::AtomicUsize>) -> u16 {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(LEAF.as_bytes())
            .collect::<Result<_, _>>()
            .expect("the fixture's certificate");
        let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).expect("the fixture's key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let requests = requests.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    fn test_ca() -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(CA.as_bytes())
            .collect::<Result<_, _>>()
            .expect("the fixture's CA")
    }

    /// A client on a configuration trusting the test CA reaches the server
    /// by the name on its certificate, and is refused by any other name:
    /// the chain and the host name are both verified.
    #[tokio::test]
    async fn the_roots_decide_and_the_host_name_is_checked() {
        let port = server().await;
        let config = config_from(&Roots::new(test_ca())).expect("a configuration");
        let client = builder_with(Some(&config)).build().expect("client");
        let answer = client
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .expect("trusted by the test CA");
        assert_eq!(answer.text().await.expect("body"), "ok");
        let wrong_name = client
            .get(format!("https://127.0.0.1:{port}/"))
            .send()
            .await
            .expect_err("the certificate names localhost only");
        assert!(
            format!("{wrong_name:?}").contains("NotValidForName"),
            "{wrong_name:?}"
        );
    }

    /// The process's shared configuration trusts the system's roots, which
    /// do not vouch for the test CA: its clients refuse the server.
    #[tokio::test]
    async fn the_shared_configuration_refuses_an_unknown_issuer() {
        let port = server().await;
        let client = client_builder().build().expect("client");
        let refused = client
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .expect_err("no system root vouches for the test CA");
        assert!(
            format!("{refused:?}").contains("UnknownIssuer"),
            "{refused:?}"
        );
        assert!(CONFIG.is_some(), "this machine has trust roots");
    }

    #[test]
    fn no_roots_is_no_configuration() {
        assert!(config_from(&Roots::new(Vec::new())).is_none());
        // A certificate rustls cannot take as an anchor is left out, so the
        // SDK's client is never given one.
        let junk = Roots::new(vec![CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])]);
        assert!(junk.certs.is_empty() && junk.store.is_empty());
    }

    /// The SDK is given the same roots, as PEM that reads back to the same
    /// certificates.
    #[test]
    fn the_sdk_gets_the_same_roots_as_pem() {
        let mut pem = String::new();
        for cert in test_ca() {
            push_pem(&mut pem, &cert);
        }
        let back: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("PEM");
        assert_eq!(back, test_ca());
        assert!(!ROOTS.certs.is_empty(), "this machine has a trust bundle");
        assert!(sdk_http_client().is_some());
    }

    /// The SDK's client on given roots reaches a server they vouch for by
    /// its name (the request arrives over TLS), and never one by another
    /// name.
    #[tokio::test]
    async fn the_sdks_client_verifies_with_the_given_roots() {
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let port = server_counting(requests.clone()).await;
        let http = sdk_http_client_with(&Roots::new(test_ca())).expect("a client");
        let s3 = |endpoint: String| {
            let config = aws_sdk_s3::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                ))
                .endpoint_url(endpoint)
                .force_path_style(true)
                .http_client(http.clone())
                .build();
            aws_sdk_s3::Client::from_conf(config)
        };
        // The answer is no S3 answer, but it came over verified TLS.
        let _ = s3(format!("https://localhost:{port}"))
            .head_bucket()
            .bucket("b")
            .send()
            .await;
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
        let refused = s3(format!("https://127.0.0.1:{port}"))
            .head_bucket()
            .bucket("b")
            .send()
            .await
            .expect_err("the certificate names localhost only");
        assert!(
            refused.as_service_error().is_none(),
            "a TLS failure, not an answer: {refused:?}"
        );
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
