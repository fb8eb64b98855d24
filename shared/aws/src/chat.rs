//! Posting a rendered notification to a chat service's webhook, with
//! retries.
//!
//! A webhook URL carries its own credential (Slack's path, Discord's token,
//! Google Chat's `key` and `token`, a Workflows signature), so it is held as
//! a [`Secret`] and appears in no error, log line or panic: reqwest's errors
//! are stripped of it, and response bodies that echo it are redacted.

use std::time::Duration;

use crate::secrets::Secret;
use gantry_core::notify::{Message, Provider, render};

/// How many attempts, and how long to wait between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each.
    pub base: Duration,
    /// No single wait is longer, whatever `Retry-After` asks.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_secs(1),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Each attempt's limit, connect to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl RetryPolicy {
    /// The longest one message can take: every attempt timing out, and the
    /// longest wait between each (a `Retry-After` is cut to `max_wait`).
    pub fn worst_case(&self) -> Duration {
        let attempts = self.attempts.max(1);
        REQUEST_TIMEOUT.saturating_mul(attempts) + self.max_wait.saturating_mul(attempts - 1)
    }

    /// The wait before attempt `attempt + 1`, after `attempt` failed.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max_wait)
    }
}

/// A notification the service accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Attempts it took, the successful one included.
    pub attempts: u32,
    /// The service's 2xx status (Slack 200, Discord 204, Workflows 202).
    pub status: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The service refused the message; sending it again will not help
    /// (invalid payload, deleted webhook, revoked token).
    #[error("{provider} refused the notification: HTTP {status}: {body_excerpt}")]
    Refused {
        provider: Provider,
        status: u16,
        body_excerpt: String,
    },
    /// The service could not be reached or kept failing; worth another try
    /// later.
    #[error("{provider} unavailable after {attempts} attempt(s): {reason}")]
    Unavailable {
        provider: Provider,
        attempts: u32,
        reason: String,
    },
    /// The configured webhook URL is not an http(s) URL.
    #[error("the {provider} webhook URL is not a valid http(s) URL")]
    InvalidUrl { provider: Provider },
}

impl NotifyError {
    /// Whether the same notification may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, NotifyError::Unavailable { .. })
    }
}

/// Posts notifications. Build one per cold start: it holds the connection
/// pool.
pub struct Notifier {
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

/// How much of a refusal's body an error keeps.
const BODY_EXCERPT_CHARS: usize = 200;
/// How much of a response body is read at all.
const BODY_READ_BYTES: usize = 4096;

impl Notifier {
    /// 4 attempts, 1 s doubling, no wait over 30 s.
    pub fn new() -> Self {
        Notifier::with_policy(RetryPolicy::default())
    }

    /// Injectable backoff, for tests and for callers with a tighter deadline.
    pub fn with_retry(attempts: u32, base: Duration, max_wait: Duration) -> Self {
        Notifier::with_policy(RetryPolicy {
            attempts,
            base,
            max_wait,
        })
    }

    pub fn with_policy(retry: RetryPolicy) -> Self {
        let http = crate::tls::client_builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            // A webhook that redirects is misconfigured; following it
            // would hand its path to another host, and turn POST into GET.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Notifier {
            http,
            retry: RetryPolicy {
                attempts: retry.attempts.max(1),
                ..retry
            },
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Renders `message` for `provider` and POSTs it to `url`: retries a
    /// 429 (after `Retry-After`), a 5xx or a failed connection; gives up at
    /// once on any other non-2xx status.
    pub async fn send(
        &self,
        provider: Provider,
        url: &Secret,
        message: &Message,
    ) -> Result<Delivery, NotifyError> {
        self.send_before(provider, url, message, None).await
    }

    /// As [`Notifier::send`], but no retry is waited for or started that
    /// could not end before `deadline`: the message is then reported
    /// unavailable, in time for the caller to release its claim.
    pub async fn send_before(
        &self,
        provider: Provider,
        url: &Secret,
        message: &Message,
        deadline: Option<gantry_core::deadline::Deadline>,
    ) -> Result<Delivery, NotifyError> {
        let target = reqwest::Url::parse(url.expose())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or(NotifyError::InvalidUrl { provider })?;
        let redactor = Redactor::new(&target);
        let body = render(provider, message);
        let correlation_id = message.correlation_id.as_str();

        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.http.post(target.clone()).json(&body).send().await;
            let (reason, retry_after) = match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if response.status().is_success() {
                        tracing::info!(%provider, status, attempts = attempt, correlation_id, "notification delivered");
                        return Ok(Delivery {
                            attempts: attempt,
                            status,
                        });
                    }
                    let retry_after = retry_after(&response);
                    if status != 429 && !(500..=599).contains(&status) {
                        let body_excerpt = redactor.excerpt(&read_some(response).await);
                        tracing::warn!(%provider, status, correlation_id, "notification refused");
                        return Err(NotifyError::Refused {
                            provider,
                            status,
                            body_excerpt,
                        });
                    }
                    (format!("HTTP {status}"), retry_after)
                }
                Err(e) => (redactor.redact(&describe(e)), None),
            };
            if attempt >= self.retry.attempts {
                tracing::warn!(%provider, attempts = attempt, reason = %reason, correlation_id, "notification not delivered, giving up");
                return Err(NotifyError::Unavailable {
                    provider,
                    attempts: attempt,
                    reason,
                });
            }
            let wait = retry_after
                .unwrap_or_else(|| self.retry.backoff(attempt))
                .min(self.retry.max_wait);
            if deadline.is_some_and(|d| !d.covers(wait + REQUEST_TIMEOUT)) {
                tracing::warn!(%provider, attempts = attempt, reason = %reason, correlation_id, "notification not delivered; no time left for another attempt");
                return Err(NotifyError::Unavailable {
                    provider,
                    attempts: attempt,
                    reason: format!("{reason}; no time left for another attempt"),
                });
            }
            tracing::warn!(%provider, attempt, reason = %reason, wait_ms = wait.as_millis() as u64, correlation_id, "notification not delivered, retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

/// `Retry-After` in seconds (Discord sends decimals). An HTTP date is
/// ignored: the backoff applies.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

/// The start of a response body, lossily decoded.
async fn read_some(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_READ_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(BODY_READ_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What went wrong, without the URL: reqwest's message and its causes.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut reason = kind.to_owned();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

/// Removes a webhook URL's secret parts from text a server or a library
/// produced: the URL itself, its path and query, each long path segment
/// and query value, and any password.
struct Redactor {
    secrets: Vec<String>,
}

const REDACTED: &str = "<redacted>";
/// Shorter parts (`v1`, `api`, `services`) are not secrets and are common
/// words; hiding them would only garble the message.
const SECRET_PART_MIN: usize = 6;

impl Redactor {
    fn new(url: &reqwest::Url) -> Self {
        let mut secrets = vec![url.as_str().to_owned(), url.path().to_owned()];
        if let Some(query) = url.query() {
            secrets.push(query.to_owned());
            secrets.extend(url.query_pairs().map(|(_, v)| v.into_owned()));
            secrets.extend(
                query
                    .split('&')
                    .filter_map(|p| p.split_once('='))
                    .map(|(_, v)| v.to_owned()),
            );
        }
        if let Some(segments) = url.path_segments() {
            secrets.extend(segments.map(str::to_owned));
        }
        if let Some(password) = url.password() {
            secrets.push(password.to_owned());
        }
        secrets.retain(|s| s.len() >= SECRET_PART_MIN);
        // Longest first, so a part inside a longer one goes with it.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }

    /// A short, single-line, redacted excerpt of a response body.
    fn excerpt(&self, body: &str) -> String {
        let redacted = self.redact(body);
        let flat: String = redacted
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        gantry_core::notify::text::fit(flat.trim(), BODY_EXCERPT_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 10,
            base: Duration::from_secs(1),
            max_wait: Duration::from_secs(30),
        };
        let waits: Vec<u64> = (1..=7).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(p.backoff(200), Duration::from_secs(30));
    }

    #[test]
    fn notify_redaction_hides_every_secret_part_of_the_url() {
        let url = reqwest::Url::parse(
            "https://chat.googleapis.com/v1/spaces/AAAAsecret/messages?key=KEYsecret123&token=TOKsecret456",
        )
        .unwrap();
        let r = Redactor::new(&url);
        let text = format!(
            "error for {url}: path /v1/spaces/AAAAsecret/messages, token=TOKsecret456, key KEYsecret123, space AAAAsecret"
        );
        let out = r.redact(&text);
        for secret in ["AAAAsecret", "KEYsecret123", "TOKsecret456"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("error for <redacted>"));
        assert_eq!(r.excerpt("bad\n\tthing"), "bad  thing");
    }

    #[test]
    fn notify_rejects_urls_that_are_not_http() {
        let notifier = Notifier::with_retry(1, Duration::ZERO, Duration::ZERO);
        let m = gantry_core::notify::picture::example();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for bad in [
            "not a url with s3cr3t",
            "file:///etc/s3cr3t",
            "ftp://host/s3cr3t",
        ] {
            let e = rt
                .block_on(notifier.send(Provider::Slack, &Secret::new(bad), &m))
                .unwrap_err();
            assert!(matches!(e, NotifyError::InvalidUrl { .. }));
            assert!(!format!("{e} {e:?}").contains("s3cr3t"));
        }
    }
}
