//! One TLS client configuration per process for Gantry's own HTTPS
//! clients (GitHub, the chat services). Each reqwest client used to build
//! its own certificate verifier, reading and parsing the system's trust
//! roots again: a function with a GitHub and a chat client read them
//! twice, on its cold start's critical path. Here they are read once
//! (rustls-native-certs, as the AWS SDK reads them: `SSL_CERT_FILE` or
//! `SSL_CERT_DIR` when set, else the system store), verified by rustls'
//! WebPKI verifier (chain and host name), on the aws-lc crypto the rest of
//! the stack uses.

use std::sync::{Arc, LazyLock};

use rustls::pki_types::CertificateDer;

/// The shared configuration; `None` when no trust root could be read
/// (each client then builds reqwest's own verifier, which says why).
static CONFIG: LazyLock<Option<rustls::ClientConfig>> = LazyLock::new(|| {
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::warn!(errors = ?found.errors, "some trust roots could not be read");
    }
    config_from(found.certs)
});

/// A client configuration trusting `roots` (unparsable ones skipped).
fn config_from(roots: Vec<CertificateDer<'static>>) -> Option<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(roots);
    if added == 0 {
        tracing::warn!("no trust roots found; HTTPS clients use reqwest's own verifier");
        return None;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => Some(builder.with_root_certificates(store).with_no_client_auth()),
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
        let config = config_from(test_ca()).expect("a configuration");
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
        assert!(config_from(Vec::new()).is_none());
    }
}
