//! One AWS request as the functions make it (the SDK's S3 client, on
//! Gantry's reqwest stack) beside its floors on the same connection pool:
//! the same request signed by hand with aws-sigv4 and sent through the
//! same reqwest client, and the same bytes sent unsigned. The first ratio
//! is what the SDK's orchestrator costs per request over a minimal signed
//! client; the second what signing costs. A loopback server answers each
//! request at once, so the times are the client's (and loopback TCP's).
//!
//! The request is the webhook's ledger claim: a PutObject of a small JSON
//! body with `If-None-Match: *`.
//!
//! cargo bench -p gantry-aws --bench request (scripts/bench prints the ratios)

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use criterion::{Criterion, criterion_group, criterion_main};
use gantry_aws::{AwsTimeouts, lambda_sdk_config};
use gantry_core::settings::Env;

const REGION: &str = "us-east-1";
const BUCKET: &str = "gantry-deliveries";
const KEY: &str =
    "deliveries/body-8c1f0e6bd0c5a3c1e9d2b7f4a6e8c0d2b4f6a8c0e2d4b6f8a0c2e4d6b8f0a2c4";
const BODY: &[u8] =
    br#"{"holder":"72d3162e-cc78-11e3-81ab-4c9367dc0958","deadline_ms":1764770000000}"#;

/// Answers every HTTP/1.1 request on a kept-alive connection with an empty
/// 200 and an ETag, as S3 answers a PutObject.
fn serve(listener: TcpListener) {
    for stream in listener.incoming().map_while(Result::ok) {
        std::thread::spawn(move || answer(stream));
    }
}

fn answer(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = b"HTTP/1.1 200 OK\r\nETag: \"6805f2cfc46c0f04559748bb039d69ae\"\r\nContent-Length: 0\r\n\r\n";
        if writer.write_all(reply).is_err() {
            return;
        }
    }
}

fn env(endpoint: String) -> impl Fn(&str) -> Option<String> {
    move |name| match name {
        "AWS_REGION" => Some(REGION.into()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDBENCH".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("bench-secret-access-key".into()),
        "AWS_SESSION_TOKEN" => Some("bench-session-token".into()),
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        _ => None,
    }
}

/// The claim, signed by hand as S3 wants it (unnormalised path, the
/// payload's SHA-256 in `x-amz-content-sha256`).
fn signed_claim(url: &str, identity: &Identity) -> http::Request<Vec<u8>> {
    let mut request = http::Request::put(url)
        .header("content-type", "application/json")
        .header("content-length", BODY.len().to_string())
        .header("if-none-match", "*")
        .body(BODY.to_vec())
        .expect("a valid request");
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(REGION)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("complete signing parameters")
        .into();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new("PUT", url, headers, SignableBody::Bytes(BODY))
        .expect("a signable request");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    instructions.apply_to_request_http1x(&mut request);
    request
}

fn request(c: &mut Criterion) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || serve(listener));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    let sdk = lambda_sdk_config(&Env(env(endpoint.clone())), AwsTimeouts::WEBHOOK)
        .expect("the SDK configuration");
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let http = gantry_aws::tls::client_builder()
        .build()
        .expect("a reqwest client");
    let identity: Identity = Credentials::new(
        "AKIDBENCH",
        "bench-secret-access-key",
        Some("bench-session-token".into()),
        None,
        "bench",
    )
    .into();
    let url = format!("{endpoint}/{BUCKET}/{KEY}");

    let mut group = c.benchmark_group("aws_request");
    group.bench_function("sdk_put_object", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let out = s3
                    .put_object()
                    .bucket(BUCKET)
                    .key(KEY)
                    .content_type("application/json")
                    .if_none_match("*")
                    .body(BODY.to_vec().into())
                    .send()
                    .await
                    .expect("the stub answers 200");
                black_box(out.e_tag().map(str::len));
            })
        })
    });
    group.bench_function("signed_put", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = signed_claim(&url, &identity);
                let request = reqwest::Request::try_from(request).expect("a reqwest request");
                let response = http.execute(request).await.expect("the stub answers");
                assert!(response.status().is_success());
                black_box(response.headers().get("etag").map(|v| v.len()));
            })
        })
    });
    group.bench_function("plain_put", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = http
                    .put(&url)
                    .header("content-type", "application/json")
                    .header("if-none-match", "*")
                    .body(BODY.to_vec())
                    .send()
                    .await
                    .expect("the stub answers");
                assert!(response.status().is_success());
                black_box(response.headers().get("etag").map(|v| v.len()));
            })
        })
    });
    group.finish();
}

criterion_group!(benches, request);
criterion_main!(benches);
