//! The trust roots, read once per process, for every HTTPS client of a
//! function: the AWS SDK's and Gantry's own (GitHub, the chat services),
//! all on one rustls configuration (see `sdk_http` for the SDK's side).
//!
//! Where they come from:
//! - `SSL_CERT_FILE` or `SSL_CERT_DIR`, when set, decide, as
//!   rustls-native-certs reads them (a layer's own CA bundle, a proxy's CA);
//! - otherwise, in a Lambda function ([`RootSource::Compiled`], the
//!   default), Mozilla's roots compiled in (webpki-roots): the store Amazon
//!   Linux's ca-certificates is made from, with nothing to read or parse on
//!   a cold start (reading and parsing the system's bundle cost about a
//!   millisecond of each one);
//! - or, in the CLI on a developer's machine ([`RootSource::System`]), the
//!   system's bundle file alone (openssl-probe's; rustls-native-certs would
//!   read the directory beside it too, the same certificates again), else
//!   the whole platform store.
//!
//! Verification is rustls' WebPKI verifier (chain and host name), on the
//! aws-lc crypto the rest of the stack uses.

use std::sync::{Arc, LazyLock, OnceLock};

use rustls::pki_types::CertificateDer;

/// Where a process's trust roots come from, when `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` are unset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootSource {
    /// Mozilla's roots, compiled in: the functions, on Lambda.
    Compiled,
    /// The platform's store: a developer's machine, where an organisation
    /// may have installed its proxy's CA.
    System,
}

static SOURCE: OnceLock<RootSource> = OnceLock::new();

/// Chooses this process's roots (the default is [`RootSource::Compiled`]).
/// Only before the first client is built: false if another was chosen, or
/// the roots were already read.
pub fn trust(source: RootSource) -> bool {
    SOURCE.set(source).is_ok() || SOURCE.get() == Some(&source)
}

/// The roots, once per process.
static ROOTS: LazyLock<Roots> =
    LazyLock::new(|| read_roots(*SOURCE.get_or_init(|| RootSource::Compiled)));

/// Trust roots, parsed once into the store every client's configuration
/// shares; a certificate rustls cannot take as an anchor is left out.
struct Roots {
    store: Arc<rustls::RootCertStore>,
}

impl Roots {
    fn new(found: Vec<CertificateDer<'static>>) -> Roots {
        let mut store = rustls::RootCertStore::empty();
        let (_added, _ignored) = store.add_parsable_certificates(found);
        Roots {
            store: Arc::new(store),
        }
    }

    fn compiled() -> Roots {
        let mut store = rustls::RootCertStore::empty();
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Roots {
            store: Arc::new(store),
        }
    }
}

fn read_roots(source: RootSource) -> Roots {
    let configured =
        std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    if configured {
        return Roots::new(native_roots());
    }
    match source {
        RootSource::Compiled => Roots::compiled(),
        RootSource::System => Roots::new(system_bundle().unwrap_or_else(native_roots)),
    }
}

/// The certificates of the system's bundle file, if it has any.
fn system_bundle() -> Option<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let bundle = openssl_probe::probe().cert_file?;
    match CertificateDer::pem_file_iter(&bundle) {
        Ok(certs) => {
            Some(certs.filter_map(Result::ok).collect::<Vec<_>>()).filter(|c| !c.is_empty())
        }
        Err(e) => {
            tracing::warn!(bundle = %bundle.display(), error = %e, "the system's trust bundle could not be read");
            None
        }
    }
}

/// What rustls-native-certs finds: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else
/// the platform's store.
fn native_roots() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::warn!(errors = ?found.errors, "some trust roots could not be read");
    }
    found.certs
}

/// The shared configuration; `None` when no trust root could be read
/// (each client then builds reqwest's own verifier, which says why).
static CONFIG: LazyLock<Option<rustls::ClientConfig>> = LazyLock::new(|| config_from(&ROOTS));

/// The AWS SDK's HTTP client, on the same configuration as every other
/// client of the process (see `sdk_http`).
pub fn sdk_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    crate::sdk_http::SdkHttp::new(client_builder).shared()
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

    /// The compiled-in roots hold the anchors Gantry's peers chain to: AWS's
    /// endpoints (Amazon's roots, and Starfield's, which cross-signs them)
    /// and GitHub's and the chat services' (DigiCert's, Sectigo's
    /// USERTrust, Let's Encrypt's ISRG).
    #[test]
    fn the_compiled_roots_vouch_for_aws_and_github() {
        let compiled = Roots::compiled();
        let named = |name: &str| {
            compiled.store.roots.iter().any(|anchor| {
                anchor
                    .subject
                    .as_ref()
                    .windows(name.len())
                    .any(|w| w == name.as_bytes())
            })
        };
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 3",
            "Starfield Services Root Certificate Authority - G2",
            "DigiCert Global Root G2",
            "USERTrust ECC Certification Authority",
            "ISRG Root X1",
        ] {
            assert!(named(name), "{name} is not among the compiled roots");
        }
        assert!(compiled.store.len() > 100);
        assert!(config_from(&compiled).is_some());
    }

    #[test]
    fn no_roots_is_no_configuration() {
        assert!(config_from(&Roots::new(Vec::new())).is_none());
        // A certificate rustls cannot take as an anchor is left out.
        let junk = Roots::new(vec![CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])]);
        assert!(junk.store.is_empty());
    }

    /// The SDK's client on given roots reaches a server they vouch for by
    /// its name (the request arrives over TLS), and never one by another
    /// name.
    #[tokio::test]
    async fn the_sdks_client_verifies_with_the_given_roots() {
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let port = server_counting(requests.clone()).await;
        let config = config_from(&Roots::new(test_ca())).expect("a configuration");
        let http = crate::sdk_http::SdkHttp::new(move || builder_with(Some(&config))).shared();
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
