//! Arbitrary deliveries through the webhook's pure path
//! (`gantry_core::webhook::process`): size, signature, parse,
//! normalise, trigger rules.
//!
//! A random body almost never carries a valid HMAC, so the input is
//! structured: control bytes choose how the request is built (signed with
//! the known secret or not, JSON or form-encoded, which event, which
//! delivery id, which configuration), and the signature, when wanted, is
//! computed over the body the fuzzer chose. Layout:
//!
//! ```text
//! byte 0  signature     0 valid  1 valid under the rotated-in secret
//!                       2 forged (a valid MAC of another body)  3 absent
//!                       4 the `extra` text as the header value
//! byte 1  secrets       0 [SECRET]  1 [NEXT, SECRET] (rotation)  2 none
//!                       bit 7: body limit just under the body's size
//! byte 2  content type  0 application/json  1 form, body as `payload=`
//!                       2 form, body as is  3 absent  4 the `extra` text
//! byte 3  event         0 ping  1 push  2 pull_request  3 the `extra` text
//!                       4 absent  5 check_run  6 check_suite
//! byte 4  delivery id   0 a GUID  1 the `extra` text  2 absent
//! byte 5  config        0 the development config  1 a strict one
//! then    extra         up to the first `\n`
//! then    body          the rest
//! ```
//!
//! Asserts: the status is one the handler documents, the reply is a JSON
//! object with a known `outcome` that fits the status, nothing unsigned is
//! ever published (or even parsed: a refusal is 401/503), a publication is
//! only for push, pull_request, check_run or check_suite and carries the
//! delivery id, and no secret is ever echoed back.
#![no_main]

use std::sync::OnceLock;

use gantry_core::config::Config;
use gantry_core::github::signature::sign;
use gantry_core::webhook::{Assessment, DEFAULT_MAX_BODY_BYTES, Publication, Summary, process};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-webhook-secret";
const NEXT: &[u8] = b"fuzz-rotated-secret";
const GUID: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

const STRICT: &str = r#"
version: 1
defaults:
  project: gantry-build
repositories:
  - name: "Codertocat/*"
    push:
      branches: [main, "release/*"]
      tags: ["v*"]
    pull-request:
      branches: [main, master]
      drafts: false
    paths-ignore: ["docs/**"]
    forks: approval
    cancel-superseded: true
  - name: "Octocoders/*"
    project: octo
    forks: no-secrets
"#;

fn configs() -> &'static [Config; 2] {
    static CONFIGS: OnceLock<[Config; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let strict = match Config::parse(STRICT) {
            Ok((config, _)) => config,
            Err(d) => panic!("the fuzz target's strict config is invalid: {d:?}"),
        };
        [Config::dev(), strict]
    })
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &[u8]) -> bool {
    match HeaderValue::from_bytes(value) {
        Ok(v) => {
            headers.insert(HeaderName::from_static(name), v);
            true
        }
        // Not a value HTTP can carry: the request would never arrive.
        Err(_) => false,
    }
}

fn valid_delivery_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let Some((control, rest)) = data.split_first_chunk::<6>() else {
        return;
    };
    let (extra, raw_body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..0], rest),
    };
    let [
        sig_mode,
        secrets_mode,
        ct_mode,
        event_mode,
        delivery_mode,
        config_mode,
    ] = *control;

    let secrets: &[&[u8]] = match (secrets_mode & 0x7f) % 3 {
        0 => &[SECRET],
        1 => &[NEXT, SECRET],
        _ => &[],
    };
    let form_wrapped;
    let body: &[u8] = if ct_mode % 5 == 1 {
        form_wrapped = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &String::from_utf8_lossy(raw_body))
            .finish();
        form_wrapped.as_bytes()
    } else {
        raw_body
    };

    let mut headers = HeaderMap::new();
    let sig_mode = sig_mode % 5;
    let signature_sent = match sig_mode {
        0 => insert(
            &mut headers,
            "x-hub-signature-256",
            sign(SECRET, body).as_bytes(),
        ),
        1 => insert(
            &mut headers,
            "x-hub-signature-256",
            sign(NEXT, body).as_bytes(),
        ),
        2 => {
            let mut other = body.to_vec();
            other.push(b' ');
            insert(
                &mut headers,
                "x-hub-signature-256",
                sign(SECRET, &other).as_bytes(),
            )
        }
        3 => false,
        _ => insert(&mut headers, "x-hub-signature-256", extra),
    };
    let authentic = signature_sent
        && ((sig_mode == 0 && secrets.contains(&SECRET))
            || (sig_mode == 1 && secrets.contains(&NEXT)));
    match ct_mode % 5 {
        0 => insert(&mut headers, "content-type", b"application/json"),
        1 | 2 => insert(
            &mut headers,
            "content-type",
            b"application/x-www-form-urlencoded",
        ),
        3 => false,
        _ => insert(&mut headers, "content-type", extra),
    };
    let event: Option<&[u8]> = match event_mode % 7 {
        0 => Some(b"ping"),
        1 => Some(b"push"),
        2 => Some(b"pull_request"),
        3 => Some(extra),
        5 => Some(b"check_run"),
        6 => Some(b"check_suite"),
        _ => None,
    };
    let event_sent = event.filter(|e| insert(&mut headers, "x-github-event", e));
    let delivery: Option<&[u8]> = match delivery_mode % 3 {
        0 => Some(GUID.as_bytes()),
        1 => Some(extra),
        _ => None,
    };
    let delivery_sent = delivery.filter(|d| insert(&mut headers, "x-github-delivery", d));
    let max_body_bytes = if secrets_mode & 0x80 != 0 && !body.is_empty() {
        body.len() - 1
    } else {
        DEFAULT_MAX_BODY_BYTES
    };
    let config = &configs()[usize::from(config_mode % 2)];

    let mut summary = Summary::default();
    let assessment = process(
        secrets,
        config,
        &headers,
        body,
        max_body_bytes,
        &mut summary,
    );

    if let Some(id) = &summary.delivery_id {
        assert!(
            valid_delivery_id(id),
            "summary names a malformed delivery id {id:?}"
        );
    }
    match assessment {
        Assessment::Publish {
            delivery_id,
            publication,
        } => {
            assert!(
                authentic,
                "published a delivery that is not signed with a secret"
            );
            assert!(body.len() <= max_body_bytes, "published an over-limit body");
            let event = event_sent.expect("published without an event header");
            assert!(
                matches!(
                    event,
                    b"push" | b"pull_request" | b"check_run" | b"check_suite"
                ),
                "published for event {:?}",
                String::from_utf8_lossy(event)
            );
            assert_eq!(
                Some(delivery_id.as_bytes()),
                delivery_sent,
                "publication's delivery id is not the header's"
            );
            assert!(valid_delivery_id(&delivery_id));
            for item in publication.items() {
                let (correlation_id, project) = match item {
                    Publication::Requested(e) => (&e.correlation_id, e.project.as_str()),
                    Publication::Skipped(e) => (&e.correlation_id, e.project.as_str()),
                    // A run's request names its repository, not a project.
                    Publication::CheckRun(e) => (&e.correlation_id, e.repository.as_str()),
                    Publication::Members(_) => panic!("nested named builds"),
                };
                // A named build's is `<delivery>.<name>`.
                let member = match item {
                    Publication::Requested(e) => e.source.member.as_ref(),
                    Publication::Skipped(e) => e.source.member.as_ref(),
                    _ => None,
                };
                let expected = match member {
                    Some(m) => format!("{delivery_id}.{}", m.name),
                    None => delivery_id.clone(),
                };
                assert_eq!(
                    correlation_id.as_str(),
                    expected,
                    "correlation id is not the delivery id"
                );
                assert!(
                    !project.is_empty(),
                    "publication without a project or repository"
                );
            }
        }
        Assessment::Reply(reply) => {
            let value: serde_json::Value = serde_json::from_str(&reply.body)
                .unwrap_or_else(|e| panic!("reply body is not JSON ({e}): {}", reply.body));
            let outcome = value
                .get("outcome")
                .and_then(|o| o.as_str())
                .unwrap_or_else(|| panic!("reply without an outcome: {}", reply.body));
            let fits = match reply.status {
                200 => outcome == "pong",
                202 => matches!(outcome, "ignored" | "accepted" | "skipped"),
                400 | 401 | 413 | 503 => matches!(outcome, "refused" | "error"),
                other => panic!("undocumented status {other}: {}", reply.body),
            };
            assert!(fits, "status {} with outcome {outcome}", reply.status);
            if body.len() > max_body_bytes {
                assert_eq!(reply.status, 413, "over-limit body answered {}", reply.body);
            } else if secrets.is_empty() {
                assert_eq!(reply.status, 503, "no secret, yet answered {}", reply.body);
            } else if !authentic {
                assert_eq!(reply.status, 401, "unsigned body answered {}", reply.body);
            }
            for secret in [SECRET, NEXT] {
                if !contains(data, secret) {
                    assert!(
                        !contains(reply.body.as_bytes(), secret),
                        "the reply echoes a secret: {}",
                        reply.body
                    );
                }
            }
        }
    }
});
