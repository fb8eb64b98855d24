//! Verifying `X-Hub-Signature-256`.
//!
//! GitHub signs the exact bytes of the request body with HMAC-SHA256 keyed by
//! the webhook secret and sends `sha256=<lower-case hex>`. We check it before
//! anything parses the body, in constant time, against every active secret
//! (two during a rotation).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header GitHub puts the SHA-256 signature in.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

const PREFIX: &str = "sha256=";
const DIGEST_LEN: usize = 32;

/// Why a delivery's signature was refused. The messages are short and safe to
/// send back to the caller: they never include the header's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 must start with 'sha256='")]
    WrongScheme,
    #[error("X-Hub-Signature-256 is not 64 hexadecimal digits")]
    BadHex,
    #[error("signature does not match the payload")]
    Mismatch,
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// Checks `header` (the raw value of `X-Hub-Signature-256`, if any) against
/// `body` for each of `secrets`. Succeeds if any secret produced the MAC.
pub fn verify_signature<S: AsRef<[u8]>>(
    secrets: &[S],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let expected = parse_header(header)?;
    for secret in secrets {
        // An HMAC key may have any length, so this cannot fail.
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_ref()) else {
            continue;
        };
        mac.update(body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The digest a well-formed header carries. Checking the form needs no
/// secret, so a request without one is refused before any secret is read.
pub fn parse_header(header: Option<&str>) -> Result<[u8; DIGEST_LEN], SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex = header
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::WrongScheme)?;
    decode_digest(hex).ok_or(SignatureError::BadHex)
}

/// The header value GitHub would send for `body` signed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        // Unreachable: HMAC accepts keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(PREFIX.len() + DIGEST_LEN * 2);
    out.push_str(PREFIX);
    crate::hex::push(&mut out, &digest);
    out
}

fn decode_digest(hex: &str) -> Option<[u8; DIGEST_LEN]> {
    let bytes = hex.as_bytes();
    if bytes.len() != DIGEST_LEN * 2 {
        return None;
    }
    let mut out = [0u8; DIGEST_LEN];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // GitHub's documented test vector ("Validating webhook deliveries").
    const SECRET: &str = "It's a Secret to Everybody";
    const PAYLOAD: &str = "Hello, World!";
    const EXPECTED: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_test_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET.as_bytes(), PAYLOAD.as_bytes()), EXPECTED);
        assert_eq!(
            verify_signature(&[SECRET], Some(EXPECTED), PAYLOAD.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let upper = format!("sha256={}", EXPECTED[7..].to_ascii_uppercase());
        assert_eq!(
            verify_signature(&[SECRET], Some(&upper), PAYLOAD.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn each_malformed_header_has_its_own_reason() {
        let body = PAYLOAD.as_bytes();
        assert_eq!(
            verify_signature(&[SECRET], None, body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(
                &[SECRET],
                Some("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"),
                body
            ),
            Err(SignatureError::WrongScheme)
        );
        assert_eq!(
            verify_signature(&[SECRET], Some("sha256=xyz"), body),
            Err(SignatureError::BadHex)
        );
        let wrong = format!("sha256={}", "0".repeat(64));
        assert_eq!(
            verify_signature(&[SECRET], Some(&wrong), body),
            Err(SignatureError::Mismatch)
        );
        let none: [&str; 0] = [];
        assert_eq!(
            verify_signature(&none, Some(EXPECTED), body),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn either_of_two_secrets_verifies_during_rotation() {
        let body = PAYLOAD.as_bytes();
        assert_eq!(
            verify_signature(&["new secret", SECRET], Some(EXPECTED), body),
            Ok(())
        );
        assert_eq!(
            verify_signature(&[SECRET, "new secret"], Some(EXPECTED), body),
            Ok(())
        );
        assert_eq!(
            verify_signature(&["new secret", "older"], Some(EXPECTED), body),
            Err(SignatureError::Mismatch)
        );
    }

    proptest! {
        #[test]
        fn any_change_to_the_body_is_refused(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            index in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let header = sign(b"s3cret", &body);
            let mut tampered = body.clone();
            let i = index.index(tampered.len());
            tampered[i] ^= flip;
            prop_assert_eq!(verify_signature(&["s3cret"], Some(&header), &body), Ok(()));
            prop_assert_eq!(
                verify_signature(&["s3cret"], Some(&header), &tampered),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn any_change_to_the_signature_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            index in any::<prop::sample::Index>(),
            replacement in any::<u8>(),
        ) {
            let header = sign(b"s3cret", &body);
            let mut bytes = header.clone().into_bytes();
            let i = index.index(bytes.len());
            prop_assume!(bytes[i] != replacement);
            // Case changes of a hex digit do not change the digest.
            prop_assume!(!(bytes[i].is_ascii_hexdigit() && bytes[i].eq_ignore_ascii_case(&replacement) && i >= PREFIX.len()));
            bytes[i] = replacement;
            let tampered = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert!(verify_signature(&["s3cret"], Some(&tampered), &body).is_err());
        }

        #[test]
        fn truncated_or_extended_bodies_are_refused(
            body in proptest::collection::vec(any::<u8>(), 1..256),
            extra in proptest::collection::vec(any::<u8>(), 1..8),
        ) {
            let header = sign(b"s3cret", &body);
            let mut longer = body.clone();
            longer.extend_from_slice(&extra);
            prop_assert!(verify_signature(&["s3cret"], Some(&header), &longer).is_err());
            prop_assert!(verify_signature(&["s3cret"], Some(&header), &body[..body.len() - 1]).is_err());
        }
    }
}
