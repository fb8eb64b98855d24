//! Build page links are capabilities: the path names what may be read (one
//! build, or one repository's history), the query carries an expiry and an
//! HMAC-SHA256 over both, made with a key Gantry keeps in SSM. Whoever has
//! the link may read the page until it expires; changing any part of it
//! (another build, a later expiry, another repository) breaks the
//! signature, which is checked in constant time.
//!
//! `/builds/<project>/<uuid>?expires=<unix seconds>&sig=<hex>` (and the
//! same path with `/log` or `/raw`: one signature covers a build's page and
//! its log), `/repos/<owner>/<name>?expires=…&sig=…` for the history.
//! `expires=never` is a link that does not expire (fork builds' pages, when
//! the operator makes them public).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::{BuildId, RepoName};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key Gantry accepts: 256 bits, as HMAC-SHA256 wants.
pub const MIN_KEY_BYTES: usize = 32;

/// The secret links are signed with. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PageKey(Vec<u8>);

impl std::fmt::Debug for PageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageKey(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("it holds {0} bytes of hex, fewer than the {MIN_KEY_BYTES} a key needs")]
    TooShort(usize),
    #[error("it is not hexadecimal")]
    NotHex,
}

impl PageKey {
    /// The key as SSM holds it: lower-case hex of at least 32 bytes.
    pub fn from_hex(text: &str) -> Result<PageKey, KeyError> {
        let text = text.trim();
        if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::NotHex);
        }
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        Ok(PageKey(bytes))
    }

    fn mac(&self, target: &Target, expires: Expiry) -> HmacSha256 {
        // Any key length is valid for HMAC; `new_from_slice` cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"gantry-page/v1\n");
        mac.update(target.signed_name().as_bytes());
        mac.update(b"\n");
        mac.update(expires.as_query().as_bytes());
        mac
    }

    /// The signature of `target` until `expires`, in hex.
    pub fn sign(&self, target: &Target, expires: Expiry) -> String {
        crate::hex::encode(&self.mac(target, expires).finalize().into_bytes())
    }

    /// Whether `sig` is this key's signature of `target` until `expires`
    /// (constant time), and the link still valid at `now_s`.
    pub fn verify(
        &self,
        target: &Target,
        expires: Expiry,
        sig: &str,
        now_s: u64,
    ) -> Result<(), Refusal> {
        let bytes = decode_hex(sig).ok_or(Refusal::Invalid)?;
        self.mac(target, expires)
            .verify_slice(&bytes)
            .map_err(|_| Refusal::Invalid)?;
        match expires {
            Expiry::At(at) if at <= now_s => Err(Refusal::Expired),
            _ => Ok(()),
        }
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Why a link opens nothing. The page says which, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this link is not valid")]
    Invalid,
    #[error("this link has expired")]
    Expired,
    #[error("no such page")]
    NotFound,
}

/// When a link stops opening its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Unix seconds.
    At(u64),
    Never,
}

impl Expiry {
    pub fn as_query(self) -> String {
        match self {
            Expiry::At(s) => s.to_string(),
            Expiry::Never => "never".to_owned(),
        }
    }

    pub fn parse(text: &str) -> Option<Expiry> {
        match text {
            "never" => Some(Expiry::Never),
            digits if !digits.is_empty() && digits.len() <= 12 => digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| Expiry::At(digits.parse().unwrap_or(u64::MAX))),
            _ => None,
        }
    }
}

/// What a link opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Build(BuildId),
    History(RepoName),
}

impl Target {
    fn signed_name(&self) -> String {
        match self {
            Target::Build(id) => format!("build\n{id}"),
            Target::History(repo) => format!("history\n{}", repo.to_ascii_lowercase()),
        }
    }

    /// The path, under the page's base URL.
    pub fn path(&self) -> String {
        match self {
            Target::Build(id) => {
                let (project, uuid) = id.parts();
                format!("/builds/{}/{uuid}", project.unwrap_or_default())
            }
            Target::History(repo) => format!("/repos/{repo}"),
        }
    }
}

/// What a request's path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The build's page.
    Build(BuildId),
    /// A part of its log: HTML lines (older ones, or those after a token).
    Log(BuildId),
    /// Its log as plain text.
    Raw(BuildId),
    History(RepoName),
}

impl Route {
    /// The path, strictly: a CodeBuild project name and build uuid, or a
    /// GitHub owner and repository name; anything else (`..`, encoded
    /// characters, more segments) is no page.
    pub fn parse(path: &str) -> Option<Route> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["builds", project, uuid, rest @ ..] => {
                if !is_project(project) || !is_uuid(uuid) {
                    return None;
                }
                let id = BuildId::new(format!("{project}:{uuid}"));
                match rest {
                    [] | [""] => Some(Route::Build(id)),
                    ["log"] => Some(Route::Log(id)),
                    ["raw"] => Some(Route::Raw(id)),
                    _ => None,
                }
            }
            ["repos", owner, name] if is_github_name(owner) && is_github_name(name) => {
                Some(Route::History(RepoName::new(format!("{owner}/{name}"))))
            }
            _ => None,
        }
    }

    pub fn target(&self) -> Target {
        match self {
            Route::Build(id) | Route::Log(id) | Route::Raw(id) => Target::Build(id.clone()),
            Route::History(repo) => Target::History(repo.clone()),
        }
    }
}

/// CodeBuild's project names: a letter or digit, then letters, digits,
/// `-` and `_`, 2 to 255 characters.
fn is_project(s: &str) -> bool {
    (2..=255).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A build's uuid: hex digits and dashes.
fn is_uuid(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_hexdigit())
}

/// GitHub's owner and repository names: letters, digits, `-`, `_`, `.`,
/// never `.` or `..` alone.
fn is_github_name(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A signed link to `target` under `base` (no trailing `/`).
pub fn url(base: &str, key: &PageKey, target: &Target, expires: Expiry) -> String {
    format!(
        "{}{}{}",
        base.trim_end_matches('/'),
        target.path(),
        query(key, target, expires)
    )
}

/// `?expires=…&sig=…` for `target`.
pub fn query(key: &PageKey, target: &Target, expires: Expiry) -> String {
    format!(
        "?expires={}&sig={}",
        expires.as_query(),
        key.sign(target, expires)
    )
}

/// Checks a request's capability: its route's target, its `expires` and
/// `sig` query parameters.
pub fn check(
    key: &PageKey,
    route: &Route,
    expires: Option<&str>,
    sig: Option<&str>,
    now_s: u64,
) -> Result<Expiry, Refusal> {
    let expires = expires.and_then(Expiry::parse).ok_or(Refusal::Invalid)?;
    let sig = sig.ok_or(Refusal::Invalid)?;
    key.verify(&route.target(), expires, sig, now_s)?;
    Ok(expires)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> PageKey {
        PageKey::from_hex(&"ab".repeat(32)).expect("a key")
    }

    const NOW: u64 = 1_790_000_000;

    fn build() -> Target {
        Target::Build(BuildId::new(
            "gantry-trusted:0f1e2d3c-4b5a-6978-8899-aabbccddeeff",
        ))
    }

    fn parse_link(link: &str) -> (Route, String, String) {
        let (path, query) = link.split_once('?').expect("a query");
        let path = path.trim_start_matches("https://pages.example");
        let mut expires = String::new();
        let mut sig = String::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "expires" => expires = v.into_owned(),
                "sig" => sig = v.into_owned(),
                _ => {}
            }
        }
        (Route::parse(path).expect("a route"), expires, sig)
    }

    #[test]
    fn a_link_opens_its_page_until_it_expires() {
        let link = url(
            "https://pages.example/",
            &key(),
            &build(),
            Expiry::At(NOW + 60),
        );
        assert!(link.starts_with(
            "https://pages.example/builds/gantry-trusted/0f1e2d3c-4b5a-6978-8899-aabbccddeeff?expires="
        ));
        let (route, expires, sig) = parse_link(&link);
        assert_eq!(
            check(&key(), &route, Some(&expires), Some(&sig), NOW),
            Ok(Expiry::At(NOW + 60))
        );
        // The log and the raw text under the same path open with it too.
        for sub in [Route::Log, Route::Raw] {
            let Route::Build(id) = route.clone() else {
                panic!("a build route")
            };
            assert!(check(&key(), &sub(id), Some(&expires), Some(&sig), NOW).is_ok());
        }
        assert_eq!(
            check(&key(), &route, Some(&expires), Some(&sig), NOW + 60),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_tampered_link_opens_nothing() {
        let link = url(
            "https://pages.example",
            &key(),
            &build(),
            Expiry::At(NOW + 60),
        );
        let (route, expires, sig) = parse_link(&link);
        // A later expiry.
        assert_eq!(
            check(
                &key(),
                &route,
                Some(&(NOW + 6000).to_string()),
                Some(&sig),
                NOW
            ),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            check(&key(), &route, Some("never"), Some(&sig), NOW),
            Err(Refusal::Invalid)
        );
        // Another build, same signature.
        let other = Route::Build(BuildId::new(
            "gantry-trusted:0f1e2d3c-4b5a-6978-8899-aabbccddeef0",
        ));
        assert_eq!(
            check(&key(), &other, Some(&expires), Some(&sig), NOW),
            Err(Refusal::Invalid)
        );
        // A flipped digit, a cut signature, none, another key.
        let mut flipped = sig.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        for bad in [flipped.as_str(), &sig[..62], "", "zz"] {
            assert_eq!(
                check(&key(), &route, Some(&expires), Some(bad), NOW),
                Err(Refusal::Invalid),
                "{bad}"
            );
        }
        assert_eq!(
            check(&key(), &route, Some(&expires), None, NOW),
            Err(Refusal::Invalid)
        );
        let other_key = PageKey::from_hex(&"cd".repeat(32)).expect("a key");
        assert_eq!(
            check(&other_key, &route, Some(&expires), Some(&sig), NOW),
            Err(Refusal::Invalid)
        );
        // A history link is not a build link.
        let repo = Route::History(RepoName::new("octo-org/widgets"));
        assert_eq!(
            check(&key(), &repo, Some(&expires), Some(&sig), NOW),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn a_path_that_climbs_or_hides_characters_is_no_route() {
        for bad in [
            "/builds/../0f1e2d3c",
            "/builds/gantry-trusted/..",
            "/builds/gantry-trusted/../../etc/passwd",
            "/builds/gantry-trusted/0f1e%2F..",
            "/builds/gantry%2Ftrusted/0f1e2d3c",
            "/builds/gantry-trusted/0f1e2d3c/log/more",
            "/builds/gantry-trusted",
            "/builds/-x/0f1e",
            "/builds/gantry-trusted/not-a-uuid",
            "/repos/octo-org/..",
            "/repos/../widgets",
            "/repos/octo-org/widgets/extra",
            "/repos/octo org/widgets",
            "/etc/passwd",
            "",
        ] {
            assert_eq!(Route::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Route::parse("/repos/octo-org/widgets.js"),
            Some(Route::History(RepoName::new("octo-org/widgets.js")))
        );
    }

    #[test]
    fn a_history_link_names_the_repository_whatever_its_case() {
        let signed = url(
            "https://pages.example",
            &key(),
            &Target::History(RepoName::new("Octo-Org/Widgets")),
            Expiry::Never,
        );
        let (_, expires, sig) = parse_link(&signed);
        let lower = Route::History(RepoName::new("octo-org/widgets"));
        assert!(check(&key(), &lower, Some(&expires), Some(&sig), u64::MAX).is_ok());
    }

    #[test]
    fn a_key_is_at_least_256_bits_of_hex_and_never_printed() {
        assert_eq!(PageKey::from_hex("abcd"), Err(KeyError::TooShort(2)));
        assert_eq!(PageKey::from_hex(&"zz".repeat(32)), Err(KeyError::NotHex));
        assert_eq!(PageKey::from_hex("abc"), Err(KeyError::NotHex));
        let printed = format!("{:?}", key());
        assert!(!printed.contains("abab"), "{printed}");
    }

    proptest! {
        #[test]
        fn only_the_signed_build_and_expiry_open(
            uuid in "[0-9a-f]{8}-[0-9a-f]{4}",
            other in "[0-9a-f]{8}-[0-9a-f]{4}",
            at in 1u64..4_000_000_000,
            later in 1u64..1000,
        ) {
            let id = BuildId::new(format!("proj:{uuid}"));
            let sig = key().sign(&Target::Build(id.clone()), Expiry::At(at));
            let route = Route::Build(id);
            prop_assert!(check(&key(), &route, Some(&at.to_string()), Some(&sig), at - 1).is_ok());
            prop_assert_eq!(
                check(&key(), &route, Some(&(at + later).to_string()), Some(&sig), 0),
                Err(Refusal::Invalid)
            );
            if other != uuid {
                let moved = Route::Build(BuildId::new(format!("proj:{other}")));
                prop_assert_eq!(
                    check(&key(), &moved, Some(&at.to_string()), Some(&sig), 0),
                    Err(Refusal::Invalid)
                );
            }
        }
    }
}
