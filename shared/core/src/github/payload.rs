//! The parts of GitHub's `push` and `pull_request` payloads Gantry reads.
//!
//! Deserialised straight from the body, borrowing strings where they need no
//! unescaping; everything else in the payload (often hundreds of URLs) is
//! skipped by serde without being built. A failure names the JSON path that
//! did not fit, so a 400 tells the sender exactly what was wrong.

use std::borrow::Cow;

use serde::Deserialize;

use crate::time::SignedTime;

/// A string from the payload: borrowed from the body unless it had escapes.
pub type Str<'a> = Cow<'a, str>;

#[derive(Debug, Deserialize)]
pub struct Repository<'a> {
    /// GitHub's numeric id: what a per-repository webhook secret is bound to.
    #[serde(default)]
    pub id: u64,
    #[serde(borrow)]
    pub full_name: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow)]
    pub owner: Account<'a>,
    #[serde(borrow)]
    pub clone_url: Str<'a>,
    #[serde(borrow)]
    pub html_url: Str<'a>,
    #[serde(borrow, default)]
    pub default_branch: Option<Str<'a>>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub fork: bool,
    /// When the repository was last pushed to: for a push delivery, this
    /// push (epoch seconds there, RFC 3339 elsewhere). Set by GitHub and
    /// signed with the body, unlike the delivery id or the time it arrives.
    #[serde(default)]
    pub pushed_at: SignedTime,
}

/// A user or organisation. Push payloads carry `name` for owners and
/// `login` elsewhere; either may be missing, never both in practice.
#[derive(Debug, Deserialize)]
pub struct Account<'a> {
    #[serde(default)]
    pub id: u64,
    #[serde(borrow, default)]
    pub login: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
}

impl Account<'_> {
    pub fn handle(&self) -> &str {
        self.login
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
pub struct Pusher<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
}

/// One entry of a push's `commits`: only the paths are read; ids, messages
/// and authors of the (up to 2048) commits are skipped without being built.
#[derive(Debug, Deserialize)]
pub struct ListedCommit<'a> {
    #[serde(borrow, default)]
    pub added: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub removed: Vec<Str<'a>>,
    #[serde(borrow, default)]
    pub modified: Vec<Str<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct Commit<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow, default)]
    pub message: Str<'a>,
    #[serde(borrow, default)]
    pub url: Option<Str<'a>>,
}

/// `X-GitHub-Event: push`.
#[derive(Debug, Deserialize)]
pub struct PushEvent<'a> {
    #[serde(borrow, rename = "ref")]
    pub git_ref: Str<'a>,
    #[serde(borrow)]
    pub before: Str<'a>,
    #[serde(borrow)]
    pub after: Str<'a>,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    #[serde(borrow)]
    pub repository: Repository<'a>,
    #[serde(borrow, default)]
    pub pusher: Option<Pusher<'a>>,
    #[serde(borrow, default)]
    pub sender: Option<Account<'a>>,
    #[serde(borrow, default)]
    pub commits: Vec<ListedCommit<'a>>,
    #[serde(borrow, default)]
    pub head_commit: Option<Commit<'a>>,
    #[serde(borrow, default)]
    pub compare: Option<Str<'a>>,
    /// Present when the delivery comes through a GitHub App.
    #[serde(default)]
    pub installation: Option<Installation>,
}

/// The GitHub App installation a delivery came through.
#[derive(Debug, Deserialize)]
pub struct Installation {
    pub id: u64,
}

/// `X-GitHub-Event: pull_request`.
#[derive(Debug, Deserialize)]
pub struct PullRequestEvent<'a> {
    #[serde(borrow)]
    pub action: Str<'a>,
    pub number: u64,
    #[serde(borrow)]
    pub pull_request: PullRequest<'a>,
    #[serde(borrow)]
    pub repository: Repository<'a>,
    #[serde(borrow, default)]
    pub sender: Option<Account<'a>>,
    /// The label added or removed (`labeled` / `unlabeled` only).
    #[serde(borrow, default)]
    pub label: Option<Label<'a>>,
    #[serde(default)]
    pub installation: Option<Installation>,
}

#[derive(Debug, Deserialize)]
pub struct Label<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
}

#[derive(Debug, Deserialize)]
pub struct PullRequest<'a> {
    #[serde(borrow)]
    pub title: Str<'a>,
    #[serde(borrow)]
    pub html_url: Str<'a>,
    #[serde(default)]
    pub draft: bool,
    /// Set by GitHub at every change of the pull request, this delivery's
    /// included: its signed time.
    #[serde(default)]
    pub updated_at: SignedTime,
    #[serde(borrow)]
    pub user: Account<'a>,
    #[serde(borrow)]
    pub head: PullRequestRef<'a>,
    #[serde(borrow)]
    pub base: PullRequestRef<'a>,
}

#[derive(Debug, Deserialize)]
pub struct PullRequestRef<'a> {
    #[serde(borrow, rename = "ref")]
    pub git_ref: Str<'a>,
    #[serde(borrow)]
    pub sha: Str<'a>,
    /// `null` when the head repository (a fork) has been deleted.
    #[serde(borrow, default)]
    pub repo: Option<HeadRepository<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct HeadRepository<'a> {
    #[serde(borrow)]
    pub full_name: Str<'a>,
}

/// A check run as `check_run` deliveries carry it.
#[derive(Debug, Deserialize)]
pub struct CheckRun<'a> {
    pub id: u64,
    #[serde(borrow, default)]
    pub external_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub head_sha: Str<'a>,
}

/// The button pressed (`requested_action` only).
#[derive(Debug, Deserialize)]
pub struct RequestedAction<'a> {
    #[serde(borrow)]
    pub identifier: Str<'a>,
}

/// `X-GitHub-Event: check_run`: sent to the App for its own runs.
#[derive(Debug, Deserialize)]
pub struct CheckRunEvent<'a> {
    #[serde(borrow)]
    pub action: Str<'a>,
    #[serde(borrow)]
    pub check_run: CheckRun<'a>,
    #[serde(borrow, default)]
    pub requested_action: Option<RequestedAction<'a>>,
    #[serde(borrow)]
    pub repository: Repository<'a>,
    #[serde(borrow)]
    pub sender: Account<'a>,
    #[serde(default)]
    pub installation: Option<Installation>,
}

#[derive(Debug, Deserialize)]
pub struct CheckSuite<'a> {
    pub id: u64,
    #[serde(borrow)]
    pub head_sha: Str<'a>,
}

/// `X-GitHub-Event: check_suite`.
#[derive(Debug, Deserialize)]
pub struct CheckSuiteEvent<'a> {
    #[serde(borrow)]
    pub action: Str<'a>,
    #[serde(borrow)]
    pub check_suite: CheckSuite<'a>,
    #[serde(borrow)]
    pub repository: Repository<'a>,
    #[serde(borrow)]
    pub sender: Account<'a>,
    #[serde(default)]
    pub installation: Option<Installation>,
}

/// `X-GitHub-Event: ping`.
#[derive(Debug, Deserialize)]
pub struct PingEvent<'a> {
    #[serde(default)]
    pub hook_id: Option<u64>,
    #[serde(borrow, default)]
    pub zen: Option<Str<'a>>,
}

/// A payload that did not have the shape GitHub documents.
#[derive(Debug, thiserror::Error)]
#[error("payload does not fit the {event} event at `{path}`: {message}")]
pub struct PayloadError {
    pub event: &'static str,
    /// The JSON path that failed, e.g. `pull_request.head.sha`.
    pub path: String,
    pub message: String,
}

/// Parses `body` as the payload of `event`, naming the failing JSON path.
///
/// The body is parsed once; only when that fails is it parsed again with
/// path tracking, so the common case pays nothing for the error's detail.
/// It must be UTF-8 throughout, as JSON is (RFC 8259): checked once over
/// the whole body, which is quicker than serde_json checking every string
/// it reads, keys included.
pub fn parse<'a, T: Deserialize<'a>>(
    event: &'static str,
    body: &'a [u8],
) -> Result<T, PayloadError> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            let message = format!("not UTF-8 at byte {}", e.valid_up_to());
            return Err(locate::<T>(event, body, message));
        }
    };
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(plain) => Err(locate::<T>(event, body, short_serde_message(&plain))),
    }
}

/// The error at the path where the path-tracking parse fails, or `$` with
/// `otherwise` when it does not (trailing bytes, or bytes that are not
/// UTF-8 in a string nothing reads).
fn locate<'a, T: Deserialize<'a>>(
    event: &'static str,
    body: &'a [u8],
    otherwise: String,
) -> PayloadError {
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => {
            let path = e.path().to_string();
            PayloadError {
                event,
                path: if path.is_empty() || path == "." {
                    "$".into()
                } else {
                    path
                },
                message: short_serde_message(e.inner()),
            }
        }
        Ok(_) => PayloadError {
            event,
            path: "$".into(),
            message: otherwise,
        },
    }
}

/// serde_json's message, cut short: a type mismatch echoes the offending
/// value, which could be anything the sender put in the payload.
fn short_serde_message(e: &serde_json::Error) -> String {
    const MAX: usize = 160;
    let text = e.to_string();
    if text.len() > MAX {
        format!("{}…", crate::events::cap(&text, MAX))
    } else {
        text
    }
}
