//! The GitHub App side of `gantry dev`'s GitHub stand-in (issue 14).
//!
//! Gantry's functions, in App mode, sign a JWT with the App's private key
//! (RS256, `iss` the App's id, at most ten minutes long), exchange it at
//! `POST /app/installations/{id}/access_tokens` for an installation token
//! scoped to one repository and a few permissions, and call the REST API
//! with that token. [`AppStandIn`] does GitHub's half: it verifies the JWT
//! with the public half of the App's key, issues tokens, remembers what
//! each one may do, and refuses as GitHub does (401 for a credential it
//! does not know, 403 "Resource not accessible by integration" for a
//! repository or permission the token was not given). It also keeps the
//! check runs (`POST`/`PATCH …/check-runs`) and answers a collaborator's
//! permission.
//!
//! Neither the key, a JWT nor a token is ever in an answer's printed line
//! or in an error: refusals name the reason only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// GitHub refuses an App JWT that lives longer than this (`exp - iat`).
pub const MAX_JWT_LIFETIME_SECS: u64 = 10 * 60;
/// An installation token lasts an hour, as GitHub's do.
pub const TOKEN_LIFETIME_SECS: u64 = 60 * 60;
/// GitHub's installation tokens start with this.
const TOKEN_PREFIX: &str = "ghs_";
/// And go on with this many letters and digits.
const TOKEN_RANDOM_CHARS: usize = 36;
/// GitHub's answer to a repository or permission a token was not given.
pub const NOT_ACCESSIBLE: &str = "Resource not accessible by integration";
/// GitHub's answer to a token it does not know (or no longer knows).
pub const BAD_CREDENTIALS: &str = "Bad credentials";
/// The installation the stand-in answers for every repository (any id is
/// taken in a token exchange).
pub const INSTALLATION_ID: u64 = 1;
/// A check run's title is cut to this many characters in a printed line.
const TITLE_CHARS: usize = 60;

/// The App's private key could not be used. Never quotes the key.
#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    #[error("not a key in PEM form (-----BEGIN RSA PRIVATE KEY----- or PRIVATE KEY)")]
    NotPem,
    #[error("a PEM {0}, not the App's RSA private key")]
    NotRsaPrivateKey(String),
    #[error("not a usable RSA private key ({0})")]
    InvalidKey(String),
}

/// Why the App's JWT is refused (401). Its `Display` is the short reason
/// the sink prints; [`JwtRefused::message`] is GitHub's answer. Neither
/// quotes the JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtRefused {
    #[error("no JWT (Authorization: Bearer)")]
    Missing,
    #[error("not a JWT")]
    Undecodable,
    #[error("JWT not signed with RS256")]
    Algorithm,
    #[error("JWT signature does not verify with the App's key")]
    Signature,
    #[error("JWT claims are not iat, exp and iss")]
    Claims,
    #[error("JWT iss is not this App's id")]
    Issuer,
    #[error("JWT expired")]
    Expired,
    #[error("JWT issued in the future")]
    IssuedLater,
    #[error("JWT lives over 10 minutes")]
    TooLong,
}

impl JwtRefused {
    /// GitHub's message, and what it means here.
    pub fn message(self) -> &'static str {
        match self {
            JwtRefused::Missing => {
                "A JSON web token could not be decoded: no 'Authorization: Bearer <JWT>' header"
            }
            JwtRefused::Undecodable => "A JSON web token could not be decoded",
            JwtRefused::Algorithm => {
                "A JSON web token could not be decoded: it must be signed with RS256"
            }
            JwtRefused::Signature => {
                "A JSON web token could not be decoded: its signature does not verify with the App's public key"
            }
            JwtRefused::Claims => {
                "A JSON web token could not be decoded: its claims must hold 'iat' and 'exp' as numbers and 'iss' as the App's id"
            }
            JwtRefused::Issuer => {
                "'Issuer' claim ('iss') must be the App's id: this JWT is for another App"
            }
            JwtRefused::Expired => {
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
            }
            JwtRefused::IssuedLater => {
                "'Issued at' claim ('iat') must be an Integer representing a time in the past"
            }
            JwtRefused::TooLong => {
                "'Expiration time' claim ('exp') is too far in the future: a JWT lives at most 10 minutes after 'iat'"
            }
        }
    }
}

/// What a token may be given, as GitHub names the App permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Checks,
    Contents,
    Metadata,
    PullRequests,
    Statuses,
}

/// How much of a [`Scope`]; `write` includes `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
}

/// What a request needs of its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// This permission (or more).
    Permission(Scope, Access),
    /// Only that the token is for the repository (metadata, which every
    /// installation token has).
    Any,
}

/// What the stand-in answers: status, JSON body, and the one line the
/// sink prints for it (never holding a credential).
#[derive(Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub line: String,
}

/// The body's message only: a token's answer holds the token.
impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned));
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("message", &message)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl Answer {
    fn json(status: u16, body: &serde_json::Value, line: String) -> Answer {
        Answer {
            status,
            body: body.to_string().into_bytes(),
            line,
        }
    }

    fn message(status: u16, message: &str, line: String) -> Answer {
        Answer::json(status, &json!({ "message": message }), line)
    }
}

/// Why a request's token does not do: GitHub's status and message (what
/// the answer says), and what the sink's line adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: &'static str,
    /// Never holds the token.
    pub why: String,
}

/// A token the stand-in issued, and what it may do.
#[derive(Debug, Clone)]
struct Issued {
    installation_id: u64,
    /// The repository's name (not `owner/name`), as the exchange names it.
    repository: String,
    permissions: BTreeMap<Scope, Access>,
    /// Epoch seconds.
    expires: u64,
}

/// A check run the stand-in keeps.
#[derive(Debug, Clone)]
struct Run {
    /// `owner/name`: the run is found only under its own repository.
    repo: String,
    name: String,
    head_sha: String,
    /// Gantry's id for the run, as GitHub keeps and lists it.
    external_id: Option<String>,
    status: String,
    conclusion: Option<String>,
}

#[derive(Default)]
struct CheckRuns {
    last_id: u64,
    runs: HashMap<u64, Run>,
}

/// GitHub as a GitHub App sees it, for one App.
pub struct AppStandIn {
    app_id: u64,
    key: jsonwebtoken::DecodingKey,
    tokens: Mutex<HashMap<String, Issued>>,
    check_runs: Mutex<CheckRuns>,
}

impl std::fmt::Debug for AppStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppStandIn {{ app_id: {} }}", self.app_id)
    }
}

/// The JWT's claims as GitHub reads them.
#[derive(Deserialize)]
struct Claims {
    iat: u64,
    exp: u64,
    /// The App's id, as a string (GitHub also takes it as a number).
    iss: serde_json::Value,
}

/// The exchange's body: one repository by name, the permissions wanted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    repositories: Vec<String>,
    #[serde(default)]
    permissions: BTreeMap<Scope, Access>,
}

impl AppStandIn {
    /// The stand-in for App `app_id`, from the App's private key (PKCS#1
    /// `RSA PRIVATE KEY` as GitHub hands it out, or PKCS#8 `PRIVATE KEY`):
    /// only its public half is kept, to verify the App's JWTs.
    pub fn from_pem(app_id: u64, private_key_pem: &str) -> Result<AppStandIn, StandInError> {
        let block = pem::parse(private_key_pem).map_err(|_| StandInError::NotPem)?;
        let pair = match block.tag() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(block.contents()),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(block.contents()),
            other => {
                let label = other
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
                    .take(40)
                    .collect();
                return Err(StandInError::NotRsaPrivateKey(label));
            }
        }
        .map_err(|e| StandInError::InvalidKey(e.to_string()))?;
        // The RFC 8017 `RSAPublicKey`, as jsonwebtoken verifies with.
        let key = jsonwebtoken::DecodingKey::from_rsa_der(pair.public_key().as_ref());
        Ok(AppStandIn {
            app_id,
            key,
            tokens: Mutex::default(),
            check_runs: Mutex::default(),
        })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// The stand-in's answer to a request, at `now` (epoch seconds), when
    /// it has one: the token exchange, check runs, a collaborator's
    /// permission, and any refusal of a GitHub request whose token does
    /// not allow it. `None` for a request it lets through (contents and
    /// statuses with a good token: the sink answers them as without an
    /// App) and for what is not GitHub's REST API (chat, logs).
    pub fn route(
        &self,
        method: &http::Method,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Option<Answer> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["app", "installations", id, "access_tokens"] if method == http::Method::POST => {
                Some(self.exchange(id, authorization, body, now))
            }
            ["repos", owner, name, "installation"] if method == http::Method::GET => {
                Some(self.installation(owner, name, authorization, now))
            }
            ["repos", owner, name, rest @ ..] => {
                let repo = format!("{owner}/{name}");
                let need = match (method, rest) {
                    (&http::Method::GET, ["contents", ..]) => {
                        Need::Permission(Scope::Contents, Access::Read)
                    }
                    (&http::Method::POST, ["statuses", _]) => {
                        Need::Permission(Scope::Statuses, Access::Write)
                    }
                    (&http::Method::POST, ["check-runs"])
                    | (&http::Method::PATCH, ["check-runs", _]) => {
                        Need::Permission(Scope::Checks, Access::Write)
                    }
                    (&http::Method::GET, ["check-runs", ..])
                    | (&http::Method::GET, ["commits", _, "check-runs"]) => {
                        Need::Permission(Scope::Checks, Access::Read)
                    }
                    _ => Need::Any,
                };
                if let Err(refused) = self.authorize(authorization, name, need, now) {
                    let Refusal {
                        status,
                        message,
                        why,
                    } = refused;
                    return Some(Answer::message(
                        status,
                        message,
                        format!("  github: {method} {path} → {status} {message} ({why})"),
                    ));
                }
                match (method, rest) {
                    (&http::Method::POST, ["check-runs"]) => {
                        Some(self.create_check_run(&repo, body))
                    }
                    (&http::Method::PATCH, ["check-runs", id]) => {
                        Some(self.update_check_run(&repo, id, body))
                    }
                    (&http::Method::GET, ["commits", sha, "check-runs"]) => {
                        Some(self.list_check_runs(&repo, sha))
                    }
                    (&http::Method::GET, ["collaborators", user, "permission"]) => {
                        Some(permission(&repo, user))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `POST /app/installations/{installation}/access_tokens` with
    /// `authorization` (`Bearer <JWT>`) and `body`.
    pub fn exchange(
        &self,
        installation: &str,
        authorization: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Answer {
        let Some(installation_id) = installation
            .parse::<u64>()
            .ok()
            .filter(|_| installation.bytes().all(|b| b.is_ascii_digit()))
        else {
            return Answer::message(
                404,
                "Not Found",
                "  github: installation token for an installation id that is not a number → 404"
                    .to_owned(),
            );
        };
        // GitHub's message in the answer; the line says it short.
        let refused = |status: u16, message: &str, short: &dyn std::fmt::Display| {
            Answer::message(
                status,
                message,
                format!("  github: installation {installation_id} token → {status} {short}"),
            )
        };
        if let Err(jwt) = self.verify_jwt(authorization, now) {
            return refused(401, jwt.message(), &jwt);
        }
        let request = match serde_json::from_slice::<TokenRequest>(body) {
            Ok(request) => request,
            Err(e) => {
                // The body holds no credential; serde's reason is cut short.
                let reason: String = e.to_string().chars().take(120).collect();
                return refused(422, &format!("Invalid request: {reason}"), &reason);
            }
        };
        let repository = match request.repositories.as_slice() {
            [one] if valid_repo_name(one) => one.clone(),
            [_] => {
                return refused(
                    422,
                    "There is at least one repository that does not exist or is not accessible to the parent installation. (a repository is named without its owner)",
                    &"a repository's name is without its owner",
                );
            }
            _ => {
                return refused(
                    422,
                    "Invalid request: Gantry asks for exactly one repository (\"repositories\": [name])",
                    &"not exactly one repository",
                );
            }
        };
        if request.permissions.is_empty() {
            return refused(
                422,
                "Invalid request: Gantry asks for at least one permission (\"permissions\": {…})",
                &"no permission asked for",
            );
        }
        let Some(token) = new_token() else {
            let message = "no randomness to make a token with";
            return refused(500, message, &message);
        };
        let expires = now + TOKEN_LIFETIME_SECS;
        let granted = permissions_text(&request.permissions);
        let answer = json!({
            "token": token,
            "expires_at": rfc3339(expires),
            "permissions": request.permissions,
            "repository_selection": "selected",
            "repositories": [{ "name": repository }],
        });
        let line = format!(
            "  github: installation {installation_id} token for {repository} ({granted}) → 201"
        );
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.retain(|_, issued| issued.expires > now);
            tokens.insert(
                token,
                Issued {
                    installation_id,
                    repository,
                    permissions: request.permissions,
                    expires,
                },
            );
        } else {
            let message = "the stand-in's token store is unusable";
            return refused(500, message, &message);
        }
        Answer::json(201, &answer, line)
    }

    /// `GET /repos/{owner}/{name}/installation`, as the App (its JWT):
    /// the App is installed on every repository, as [`INSTALLATION_ID`].
    pub fn installation(
        &self,
        owner: &str,
        name: &str,
        authorization: Option<&str>,
        now: u64,
    ) -> Answer {
        if let Err(refused) = self.verify_jwt(authorization, now) {
            return Answer::message(
                401,
                refused.message(),
                format!("  github: App installation on {owner}/{name} → 401 {refused}"),
            );
        }
        Answer::json(
            200,
            &json!({
                "id": INSTALLATION_ID,
                "app_id": self.app_id,
                "account": { "login": owner },
                "repository_selection": "all",
            }),
            format!("  github: App installation on {owner}/{name} → {INSTALLATION_ID}"),
        )
    }

    /// The App's JWT in `authorization` verified at `now`; else the reason
    /// it is refused (naming no part of it).
    fn verify_jwt(&self, authorization: Option<&str>, now: u64) -> Result<(), JwtRefused> {
        let jwt = authorization
            .and_then(|a| credential(a, &["bearer"]))
            .ok_or(JwtRefused::Missing)?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // The claims are checked below, each with its own reason.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = match jsonwebtoken::decode::<Claims>(jwt, &self.key, &validation) {
            Ok(data) => data.claims,
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                return Err(match e.kind() {
                    ErrorKind::InvalidSignature => JwtRefused::Signature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        JwtRefused::Algorithm
                    }
                    ErrorKind::Json(_) => JwtRefused::Claims,
                    _ => JwtRefused::Undecodable,
                });
            }
        };
        let issuer_ok = match &claims.iss {
            serde_json::Value::String(s) => *s == self.app_id.to_string(),
            serde_json::Value::Number(n) => n.as_u64() == Some(self.app_id),
            _ => false,
        };
        if !issuer_ok {
            return Err(JwtRefused::Issuer);
        }
        if claims.exp <= now {
            return Err(JwtRefused::Expired);
        }
        if claims.iat > now {
            return Err(JwtRefused::IssuedLater);
        }
        if claims.exp.saturating_sub(claims.iat) > MAX_JWT_LIFETIME_SECS {
            return Err(JwtRefused::TooLong);
        }
        Ok(())
    }

    /// Whether `authorization` carries a token issued for repository
    /// `name` that allows `need`, at `now`: else why not, with GitHub's
    /// status and message (401 for a token it does not know, 403 for one
    /// that is not for this).
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        name: &str,
        need: Need,
        now: u64,
    ) -> Result<(), Refusal> {
        let refusal = |status, message, why: String| Refusal {
            status,
            message,
            why,
        };
        let Some(token) = authorization.and_then(|a| credential(a, &["bearer", "token"])) else {
            return Err(refusal(401, "Requires authentication", "no token".into()));
        };
        let tokens = self
            .tokens
            .lock()
            .map_err(|_| refusal(401, BAD_CREDENTIALS, "the token store is unusable".into()))?;
        let Some(issued) = tokens.get(token).filter(|i| i.expires > now) else {
            return Err(refusal(
                401,
                BAD_CREDENTIALS,
                "a token the stand-in did not issue, or expired".into(),
            ));
        };
        let whose = format!("installation {}'s token", issued.installation_id);
        // GitHub's names are case-insensitive.
        if !issued.repository.eq_ignore_ascii_case(name) {
            return Err(refusal(
                403,
                NOT_ACCESSIBLE,
                format!("{whose} is for {}", issued.repository),
            ));
        }
        match need {
            Need::Any => Ok(()),
            Need::Permission(scope, access)
                if issued.permissions.get(&scope).is_some_and(|a| *a >= access) =>
            {
                Ok(())
            }
            Need::Permission(scope, access) => Err(refusal(
                403,
                NOT_ACCESSIBLE,
                format!(
                    "{whose} has {}, not {}",
                    permissions_text(&issued.permissions),
                    permissions_text(&BTreeMap::from([(scope, access)]))
                ),
            )),
        }
    }

    /// `POST /repos/{repo}/check-runs`.
    fn create_check_run(&self, repo: &str, body: &[u8]) -> Answer {
        let invalid = |what: &str| {
            Answer::message(
                422,
                &format!("Invalid request.\n\n{what}"),
                format!("  github: check run for {repo} → 422 {what}"),
            )
        };
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else {
            return invalid("the body is not JSON");
        };
        let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
            return invalid("\"name\" wasn't supplied.");
        };
        let Some(head_sha) = body["head_sha"].as_str().filter(|s| !s.is_empty()) else {
            return invalid("\"head_sha\" wasn't supplied.");
        };
        let (status, conclusion) = match state(&body, "queued", None) {
            Ok(state) => state,
            Err(what) => return invalid(what),
        };
        let Ok(mut check_runs) = self.check_runs.lock() else {
            return Answer::message(500, "the stand-in's check runs are unusable", String::new());
        };
        check_runs.last_id += 1;
        let id = check_runs.last_id;
        let run = Run {
            repo: repo.to_owned(),
            name: name.to_owned(),
            head_sha: head_sha.to_owned(),
            external_id: body["external_id"].as_str().map(str::to_owned),
            status,
            conclusion,
        };
        let line = run_line(id, &run, &body);
        let answer = run_json(id, &run);
        check_runs.runs.insert(id, run);
        Answer::json(201, &answer, line)
    }

    /// `GET /repos/{repo}/commits/{sha}/check-runs`: the runs on the
    /// commit, as GitHub lists them (the query's `check_name` is not
    /// applied: Gantry picks its run by `external_id`).
    fn list_check_runs(&self, repo: &str, sha: &str) -> Answer {
        let Ok(check_runs) = self.check_runs.lock() else {
            return Answer::message(500, "the stand-in's check runs are unusable", String::new());
        };
        let mut found: Vec<(&u64, &Run)> = check_runs
            .runs
            .iter()
            .filter(|(_, r)| r.repo.eq_ignore_ascii_case(repo) && r.head_sha == sha)
            .collect();
        found.sort_by_key(|(id, _)| **id);
        let runs: Vec<serde_json::Value> = found.iter().map(|(id, r)| run_json(**id, r)).collect();
        Answer::json(
            200,
            &json!({ "total_count": runs.len(), "check_runs": runs }),
            format!(
                "  github: check runs of {repo}@{} → {}",
                short(sha),
                runs.len()
            ),
        )
    }

    /// `PATCH /repos/{repo}/check-runs/{id}`: what the body gives replaces
    /// what the run had.
    fn update_check_run(&self, repo: &str, id: &str, body: &[u8]) -> Answer {
        let not_found = Answer::message(
            404,
            "Not Found",
            format!("  github: check run #{id} of {repo} → 404 (no such run)"),
        );
        let Ok(id) = id.parse::<u64>() else {
            return not_found;
        };
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Answer::message(
                422,
                "Invalid request.\n\nthe body is not JSON",
                format!("  github: check run #{id} → 422 the body is not JSON"),
            );
        };
        let Ok(mut check_runs) = self.check_runs.lock() else {
            return Answer::message(500, "the stand-in's check runs are unusable", String::new());
        };
        let Some(run) = check_runs.runs.get_mut(&id).filter(|r| r.repo == repo) else {
            return not_found;
        };
        let (status, conclusion) = match state(&body, &run.status, run.conclusion.as_deref()) {
            Ok(state) => state,
            Err(what) => {
                return Answer::message(
                    422,
                    &format!("Invalid request.\n\n{what}"),
                    format!("  github: check run #{id} → 422 {what}"),
                );
            }
        };
        if let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) {
            name.clone_into(&mut run.name);
        }
        run.status = status;
        run.conclusion = conclusion;
        Answer::json(200, &run_json(id, run), run_line(id, run, &body))
    }
}

/// The check run's status and conclusion after `body`, from `status` and
/// `conclusion` before it; what is wrong with it otherwise.
fn state(
    body: &serde_json::Value,
    status: &str,
    conclusion: Option<&str>,
) -> Result<(String, Option<String>), &'static str> {
    const STATUSES: &[&str] = &[
        "queued",
        "in_progress",
        "completed",
        "waiting",
        "requested",
        "pending",
    ];
    const CONCLUSIONS: &[&str] = &[
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "success",
        "skipped",
        "stale",
        "timed_out",
    ];
    let mut status = match &body["status"] {
        serde_json::Value::Null => status.to_owned(),
        serde_json::Value::String(s) if STATUSES.contains(&s.as_str()) => s.clone(),
        _ => return Err("\"status\" is not a check run status."),
    };
    let conclusion = match &body["conclusion"] {
        serde_json::Value::Null => conclusion.map(str::to_owned),
        serde_json::Value::String(c) if CONCLUSIONS.contains(&c.as_str()) => {
            // A conclusion completes the run, as GitHub does.
            status = "completed".to_owned();
            Some(c.clone())
        }
        _ => return Err("\"conclusion\" is not a check run conclusion."),
    };
    if status == "completed" && conclusion.is_none() {
        return Err("\"conclusion\" wasn't supplied: a completed run needs one.");
    }
    Ok((status, conclusion))
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

fn run_json(id: u64, run: &Run) -> serde_json::Value {
    json!({
        "id": id,
        "name": run.name,
        "head_sha": run.head_sha,
        "external_id": run.external_id,
        "status": run.status,
        "conclusion": run.conclusion,
    })
}

/// `  github: check run #1 gantry/widgets completed failure "title"`: the
/// title only for a completed run (it says why), cut short.
fn run_line(id: u64, run: &Run, body: &serde_json::Value) -> String {
    let mut line = format!("  github: check run #{id} {} {}", run.name, run.status);
    if let Some(conclusion) = &run.conclusion {
        line.push(' ');
        line.push_str(conclusion);
    }
    if run.status == "completed"
        && let Some(title) = body["output"]["title"].as_str()
    {
        let short: String = title.chars().take(TITLE_CHARS).collect();
        let more = if short.len() < title.len() { "…" } else { "" };
        line.push_str(&format!(" {short:?}{more}"));
    }
    if let Some(n) = body["output"]["annotations"]
        .as_array()
        .map(Vec::len)
        .filter(|n| *n > 0)
    {
        line.push_str(&format!(" (+{n} annotations)"));
    }
    // What the run shows of the log: its last line says what failed.
    if let Some(text) = body["output"]["text"].as_str() {
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with("```"))
            .unwrap_or_default();
        // CodeBuild's own lines: the message, not the stamp.
        let last = match last.strip_prefix("[Container] ") {
            Some(rest) => rest.splitn(3, ' ').nth(2).unwrap_or(rest),
            None => last,
        };
        let short: String = last.chars().take(TITLE_CHARS).collect();
        line.push_str(&format!(
            " (log: {} lines, ends {short:?})",
            text.lines().count()
        ));
    }
    line
}

/// `GET /repos/{repo}/collaborators/{user}/permission`: everyone may
/// write, locally.
fn permission(repo: &str, user: &str) -> Answer {
    let name = user.strip_suffix("[bot]").unwrap_or(user);
    let login_ok = (1..=39).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !login_ok {
        return Answer::message(
            404,
            "Not Found",
            format!("  github: permission on {repo} of a login that is not one → 404"),
        );
    }
    Answer::json(
        200,
        &json!({
            "permission": "write",
            "role_name": "write",
            "user": { "login": user },
        }),
        format!("  github: permission of {user} on {repo} → write"),
    )
}

/// The credential of an `Authorization` header whose scheme is one of
/// `schemes` (lower case; GitHub reads them in any case).
fn credential<'a>(authorization: &'a str, schemes: &[&str]) -> Option<&'a str> {
    let (scheme, value) = authorization.trim().split_once(' ')?;
    let value = value.trim();
    (schemes.contains(&scheme.to_ascii_lowercase().as_str()) && !value.is_empty()).then_some(value)
}

/// A repository's name, without its owner, as GitHub allows it.
fn valid_repo_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `checks:write, contents:read`, for a printed line.
fn permissions_text(permissions: &BTreeMap<Scope, Access>) -> String {
    permissions
        .iter()
        .map(|(scope, access)| {
            let scope = serde_json::to_value(scope).unwrap_or_default();
            let access = serde_json::to_value(access).unwrap_or_default();
            format!(
                "{}:{}",
                scope.as_str().unwrap_or("?"),
                access.as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ghs_` and 36 random letters and digits (from the system's random
/// source, unbiased); `None` when there is no randomness to be had.
fn new_token() -> Option<String> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + TOKEN_RANDOM_CHARS);
    token.push_str(TOKEN_PREFIX);
    let mut bytes = [0_u8; 64];
    while token.len() < TOKEN_PREFIX.len() + TOKEN_RANDOM_CHARS {
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        // 248 = 4 × 62: bytes above are dropped, so every character is as
        // likely as another.
        for b in bytes.iter().filter(|b| **b < 248) {
            if token.len() == TOKEN_PREFIX.len() + TOKEN_RANDOM_CHARS {
                break;
            }
            token.push(char::from(ALPHABET[usize::from(*b % 62)]));
        }
    }
    Some(token)
}

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (year, month, day) = gantry_core::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, in epoch seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_aws::github::app::AppKey;
    use gantry_aws::secrets::Secret;

    const KEY: &str = include_str!("../../tests/fixtures/test-only-app-key.pem");
    const PUBLIC_KEY: &str = include_str!("../../tests/fixtures/test-only-app-key.pub.pem");
    const APP: u64 = 4242;
    const NOW: u64 = 1_760_000_000;

    fn stand_in() -> AppStandIn {
        AppStandIn::from_pem(APP, KEY).expect("the fixture key")
    }

    /// A key of its own (PKCS#8, as `openssl genrsa` writes them now).
    fn other_key() -> String {
        use aws_lc_rs::encoding::AsDer;
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("a new key");
        let der = pair.as_der().expect("its PKCS#8");
        pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()))
    }

    fn jwt(app: u64, key: &str, now: u64) -> String {
        let key = AppKey::from_pem(app, &Secret::new(key)).expect("a key");
        format!("Bearer {}", key.jwt(now).expect("signed").expose())
    }

    /// A JWT with any claims, signed with the fixture key.
    fn jwt_with(claims: &serde_json::Value, algorithm: jsonwebtoken::Algorithm) -> String {
        let key = match algorithm {
            jsonwebtoken::Algorithm::RS256 => {
                jsonwebtoken::EncodingKey::from_rsa_pem(KEY.as_bytes()).expect("the fixture")
            }
            // The public key as an HMAC secret: the algorithm confusion
            // a verifier that trusts the header falls for.
            _ => jsonwebtoken::EncodingKey::from_secret(PUBLIC_KEY.as_bytes()),
        };
        let header = jsonwebtoken::Header::new(algorithm);
        let token = jsonwebtoken::encode(&header, claims, &key).expect("signed");
        format!("Bearer {token}")
    }

    const BODY: &[u8] = br#"{"repositories":["widgets"],"permissions":{"checks":"write"}}"#;

    fn issue(app: &AppStandIn, body: &[u8]) -> String {
        let answer = app.exchange("77", Some(&jwt(APP, KEY, NOW)), body, NOW);
        assert_eq!(answer.status, 201, "{answer:?}");
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        format!("Bearer {}", body["token"].as_str().expect("a token"))
    }

    fn message(answer: &Answer) -> String {
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        body["message"].as_str().expect("a message").to_owned()
    }

    #[test]
    fn a_valid_jwt_gets_a_token_for_its_one_repository_for_an_hour() {
        let app = stand_in();
        let jwt = jwt(APP, KEY, NOW);
        let answer = app.exchange("77", Some(&jwt), BODY, NOW);
        assert_eq!(answer.status, 201, "{answer:?}");
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        let token = body["token"].as_str().expect("a token");
        assert!(token.starts_with("ghs_"), "{token}");
        assert_eq!(token.len(), 40);
        assert!(token[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            gantry_core::time::parse_rfc3339(body["expires_at"].as_str().expect("a date")),
            Some((NOW + 3600) * 1000)
        );
        assert_eq!(body["permissions"], json!({"checks": "write"}));
        assert_eq!(body["repositories"], json!([{"name": "widgets"}]));
        // Two tokens are two.
        let again = app.exchange("77", Some(&jwt), BODY, NOW);
        let again: serde_json::Value = serde_json::from_slice(&again.body).expect("JSON");
        assert_ne!(again["token"], body["token"]);
    }

    #[test]
    fn the_printed_line_of_an_exchange_holds_neither_the_token_nor_the_jwt() {
        let app = stand_in();
        let jwt = jwt(APP, KEY, NOW);
        let answer = app.exchange("77", Some(&jwt), BODY, NOW);
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        let token = body["token"].as_str().expect("a token");
        assert_eq!(
            answer.line,
            "  github: installation 77 token for widgets (checks:write) → 201"
        );
        assert!(!answer.line.contains(token));
        assert!(!answer.line.contains(jwt.trim_start_matches("Bearer ")));
        assert!(!answer.line.contains("ghs_"));
        // Nor a refusal's, line or answer.
        let refused = app.exchange("77", Some(&jwt), BODY, NOW + 3600);
        assert_eq!(refused.status, 401);
        let text = format!("{}{}", refused.line, String::from_utf8_lossy(&refused.body));
        assert!(!text.contains(jwt.trim_start_matches("Bearer ")), "{text}");
    }

    #[test]
    fn a_jwt_signed_with_another_key_is_refused() {
        let answer = stand_in().exchange("77", Some(&jwt(APP, &other_key(), NOW)), BODY, NOW);
        assert_eq!(answer.status, 401, "{answer:?}");
        assert!(message(&answer).contains("signature"), "{answer:?}");
    }

    #[test]
    fn a_jwt_of_another_app_is_refused() {
        let answer = stand_in().exchange("77", Some(&jwt(APP + 1, KEY, NOW)), BODY, NOW);
        assert_eq!(answer.status, 401, "{answer:?}");
        assert!(message(&answer).contains("'iss'"), "{answer:?}");
        // The id as a number is the App's too, as GitHub takes it.
        let numeric = jwt_with(
            &json!({"iat": NOW - 60, "exp": NOW + 540, "iss": APP}),
            jsonwebtoken::Algorithm::RS256,
        );
        assert_eq!(
            stand_in().exchange("77", Some(&numeric), BODY, NOW).status,
            201
        );
    }

    #[test]
    fn an_expired_jwt_is_refused() {
        // Made ten minutes ago: expired a minute ago.
        let answer = stand_in().exchange("77", Some(&jwt(APP, KEY, NOW - 600)), BODY, NOW);
        assert_eq!(answer.status, 401, "{answer:?}");
        assert!(message(&answer).contains("'exp'"), "{answer:?}");
        assert!(message(&answer).contains("future time"), "{answer:?}");
    }

    #[test]
    fn a_jwt_living_over_ten_minutes_is_refused() {
        let long = jwt_with(
            &json!({"iat": NOW - 60, "exp": NOW - 60 + 601, "iss": APP.to_string()}),
            jsonwebtoken::Algorithm::RS256,
        );
        let answer = stand_in().exchange("77", Some(&long), BODY, NOW);
        assert_eq!(answer.status, 401, "{answer:?}");
        assert!(
            message(&answer).contains("too far in the future"),
            "{answer:?}"
        );
        let ten = jwt_with(
            &json!({"iat": NOW - 60, "exp": NOW - 60 + 600, "iss": APP.to_string()}),
            jsonwebtoken::Algorithm::RS256,
        );
        assert_eq!(stand_in().exchange("77", Some(&ten), BODY, NOW).status, 201);
    }

    #[test]
    fn a_jwt_issued_in_the_future_is_refused() {
        let early = jwt_with(
            &json!({"iat": NOW + 60, "exp": NOW + 300, "iss": APP.to_string()}),
            jsonwebtoken::Algorithm::RS256,
        );
        let answer = stand_in().exchange("77", Some(&early), BODY, NOW);
        assert_eq!(answer.status, 401, "{answer:?}");
        assert!(message(&answer).contains("'iat'"), "{answer:?}");
    }

    #[test]
    fn only_rs256_is_taken() {
        let hs = jwt_with(
            &json!({"iat": NOW - 60, "exp": NOW + 540, "iss": APP.to_string()}),
            jsonwebtoken::Algorithm::HS256,
        );
        let answer = stand_in().exchange("77", Some(&hs), BODY, NOW);
        assert_eq!(answer.status, 401, "{answer:?}");
        assert!(message(&answer).contains("RS256"), "{answer:?}");
        // Unsigned: `{"alg":"none","typ":"JWT"}` on a good JWT's claims.
        let good = jwt(APP, KEY, NOW);
        let claims = good.split('.').nth(1).expect("claims");
        let none = format!("Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
        assert_eq!(
            stand_in().exchange("77", Some(&none), BODY, NOW).status,
            401
        );
    }

    #[test]
    fn an_exchange_without_a_jwt_is_refused() {
        let app = stand_in();
        for authorization in [
            None,
            Some("Bearer "),
            Some("Basic x"),
            Some("Bearer not.a.jwt"),
        ] {
            let answer = app.exchange("77", authorization, BODY, NOW);
            assert_eq!(answer.status, 401, "{authorization:?}: {answer:?}");
        }
        // Nor a token of its own in place of the JWT.
        let token = issue(&app, BODY);
        assert_eq!(app.exchange("77", Some(&token), BODY, NOW).status, 401);
    }

    #[test]
    fn a_body_must_name_one_repository_and_some_permission() {
        let app = stand_in();
        let jwt = jwt(APP, KEY, NOW);
        for body in [
            &br#"{"repositories":["a","b"],"permissions":{"checks":"write"}}"#[..],
            br#"{"repositories":[],"permissions":{"checks":"write"}}"#,
            br#"{"permissions":{"checks":"write"}}"#,
            br#"{"repositories":["octo-org/widgets"],"permissions":{"checks":"write"}}"#,
            br#"{"repositories":["widgets"]}"#,
            br#"{"repositories":["widgets"],"permissions":{}}"#,
            br#"{"repositories":["widgets"],"permissions":{"checks":"admin"}}"#,
            br#"{"repositories":["widgets"],"permissions":{"administration":"write"}}"#,
            br#"{"repository_ids":[1],"permissions":{"checks":"write"}}"#,
            b"",
            b"not json",
        ] {
            let answer = app.exchange("77", Some(&jwt), body, NOW);
            assert_eq!(
                answer.status,
                422,
                "{}: {answer:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(app.exchange("x7", Some(&jwt), BODY, NOW).status, 404);
    }

    #[test]
    fn a_token_does_what_it_was_given_on_its_repository_only() {
        let app = stand_in();
        let checks = issue(&app, BODY);
        let contents = issue(
            &app,
            br#"{"repositories":["widgets"],"permissions":{"contents":"read"}}"#,
        );
        let write = Need::Permission(Scope::Checks, Access::Write);
        assert_eq!(app.authorize(Some(&checks), "widgets", write, NOW), Ok(()));
        // `token <t>` is GitHub's other way of sending it.
        let plain = checks.replace("Bearer ", "token ");
        assert_eq!(app.authorize(Some(&plain), "widgets", write, NOW), Ok(()));
        let refused = app
            .authorize(Some(&checks), "gadgets", write, NOW)
            .expect_err("another repository");
        assert_eq!((refused.status, refused.message), (403, NOT_ACCESSIBLE));
        assert!(refused.why.contains("for widgets"), "{refused:?}");
        let refused = app
            .authorize(Some(&contents), "widgets", write, NOW)
            .expect_err("not a permission it has");
        assert_eq!((refused.status, refused.message), (403, NOT_ACCESSIBLE));
        assert!(refused.why.contains("contents:read"), "{refused:?}");
        assert!(!refused.why.contains("ghs_"), "{refused:?}");
        // Write includes read; every token may read metadata.
        let read = Need::Permission(Scope::Checks, Access::Read);
        assert_eq!(app.authorize(Some(&checks), "widgets", read, NOW), Ok(()));
        assert_eq!(
            app.authorize(Some(&contents), "widgets", Need::Any, NOW),
            Ok(())
        );
        // Unknown, missing and expired tokens are not credentials.
        let unknown = "Bearer ghs_000000000000000000000000000000000000";
        for (authorization, now) in [
            (Some(unknown), NOW),
            (None, NOW),
            (Some(checks.as_str()), NOW + TOKEN_LIFETIME_SECS),
        ] {
            let refused = app
                .authorize(authorization, "widgets", Need::Any, now)
                .expect_err("no credential");
            assert_eq!(refused.status, 401, "{authorization:?}");
        }
    }

    #[test]
    fn every_github_request_is_checked_against_its_token() {
        let app = stand_in();
        let post = http::Method::POST;
        let get = http::Method::GET;
        let checks = issue(&app, BODY);
        let statuses = issue(
            &app,
            br#"{"repositories":["widgets"],"permissions":{"statuses":"write"}}"#,
        );
        let contents = issue(
            &app,
            br#"{"repositories":["widgets"],"permissions":{"contents":"read"}}"#,
        );
        let sha = "9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070";
        let contents_path = "/repos/o/widgets/contents/buildspec.yml";
        let status_path = format!("/repos/o/widgets/statuses/{sha}");
        // Let through to the sink's own answer…
        assert_eq!(
            app.route(&get, contents_path, Some(&contents), b"", NOW),
            None
        );
        assert_eq!(
            app.route(&post, &status_path, Some(&statuses), b"{}", NOW),
            None
        );
        // … or refused.
        let refused = app
            .route(&get, contents_path, Some(&checks), b"", NOW)
            .expect("refused");
        assert_eq!(refused.status, 403);
        assert_eq!(message(&refused), NOT_ACCESSIBLE);
        assert!(
            refused
                .line
                .starts_with("  github: GET /repos/o/widgets/contents/")
        );
        assert!(!refused.line.contains("ghs_"), "{}", refused.line);
        let refused = app
            .route(&post, &status_path, Some(&contents), b"{}", NOW)
            .expect("refused");
        assert_eq!(refused.status, 403);
        let refused = app
            .route(&get, contents_path, None, b"", NOW)
            .expect("refused");
        assert_eq!(refused.status, 401);
        // Not GitHub's: not the stand-in's.
        assert_eq!(app.route(&post, "/chat/slack", None, b"{}", NOW), None);
    }

    #[test]
    fn check_runs_are_numbered_kept_and_updated() {
        let app = stand_in();
        let token = issue(&app, BODY);
        let token = Some(token.as_str());
        let create = br#"{"name":"gantry/widgets","head_sha":"abc","status":"queued","output":{"title":"Queued","summary":"s"}}"#;
        let answer = app
            .route(
                &http::Method::POST,
                "/repos/o/widgets/check-runs",
                token,
                create,
                NOW,
            )
            .expect("answered");
        assert_eq!(answer.status, 201, "{answer:?}");
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(body["id"], 1);
        assert_eq!(body["name"], "gantry/widgets");
        assert_eq!(body["head_sha"], "abc");
        assert_eq!(body["status"], "queued");
        assert_eq!(answer.line, "  github: check run #1 gantry/widgets queued");
        let second = app
            .route(
                &http::Method::POST,
                "/repos/o/widgets/check-runs",
                token,
                create,
                NOW,
            )
            .expect("answered");
        let second: serde_json::Value = serde_json::from_slice(&second.body).expect("JSON");
        assert_eq!(second["id"], 2);

        let done = br#"{"name":"gantry/widgets","status":"completed","conclusion":"failure","output":{"title":"2 tests failed","summary":"s"}}"#;
        let answer = app
            .route(
                &http::Method::PATCH,
                "/repos/o/widgets/check-runs/1",
                token,
                done,
                NOW,
            )
            .expect("answered");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            answer.line,
            "  github: check run #1 gantry/widgets completed failure \"2 tests failed\""
        );
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(
            (body["id"].as_u64(), body["conclusion"].as_str()),
            (Some(1), Some("failure"))
        );

        for (path, body) in [
            ("/repos/o/widgets/check-runs/3", &done[..]),
            ("/repos/o/widgets/check-runs/x", &done[..]),
        ] {
            let answer = app
                .route(&http::Method::PATCH, path, token, body, NOW)
                .expect("answered");
            assert_eq!(answer.status, 404, "{path}: {answer:?}");
        }
        // Run 1 is widgets', not found under another repository's name
        // (that the token is for widgets is checked first: 403).
        let other = issue(
            &app,
            br#"{"repositories":["gadgets"],"permissions":{"checks":"write"}}"#,
        );
        let answer = app
            .route(
                &http::Method::PATCH,
                "/repos/o/gadgets/check-runs/1",
                Some(&other),
                done,
                NOW,
            )
            .expect("answered");
        assert_eq!(answer.status, 404, "{answer:?}");

        for bad in [
            &br#"{"head_sha":"abc"}"#[..],
            br#"{"name":"n"}"#,
            br#"{"name":"n","head_sha":"abc","status":"done"}"#,
            br#"{"name":"n","head_sha":"abc","status":"completed"}"#,
            br#"{"name":"n","head_sha":"abc","conclusion":"great"}"#,
            b"nope",
        ] {
            let answer = app
                .route(
                    &http::Method::POST,
                    "/repos/o/widgets/check-runs",
                    token,
                    bad,
                    NOW,
                )
                .expect("answered");
            assert_eq!(answer.status, 422, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_app_is_installed_everywhere_for_its_jwt_only() {
        let app = stand_in();
        let get = http::Method::GET;
        let path = "/repos/octo-org/widgets/installation";
        let answer = app
            .route(&get, path, Some(&jwt(APP, KEY, NOW)), b"", NOW)
            .expect("answered");
        assert_eq!(answer.status, 200, "{answer:?}");
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(body["id"], INSTALLATION_ID);
        assert_eq!(body["app_id"], APP);
        let other = jwt(APP, &other_key(), NOW);
        let refused = app
            .route(&get, path, Some(&other), b"", NOW)
            .expect("answered");
        assert_eq!(refused.status, 401);
        let token = issue(&app, BODY);
        let refused = app
            .route(&get, path, Some(&token), b"", NOW)
            .expect("answered");
        assert_eq!(refused.status, 401);
    }

    #[test]
    fn a_collaborator_may_write() {
        let app = stand_in();
        let token = issue(&app, BODY);
        let answer = app
            .route(
                &http::Method::GET,
                "/repos/o/widgets/collaborators/octocat/permission",
                Some(&token),
                b"",
                NOW,
            )
            .expect("answered");
        assert_eq!(answer.status, 200);
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(
            body,
            json!({"permission": "write", "role_name": "write", "user": {"login": "octocat"}})
        );
        let refused = app
            .route(
                &http::Method::GET,
                "/repos/o/gadgets/collaborators/octocat/permission",
                Some(&token),
                b"",
                NOW,
            )
            .expect("answered");
        assert_eq!(refused.status, 403);
    }

    #[test]
    fn only_a_private_rsa_key_will_do_and_its_errors_quote_none_of_it() {
        assert!(AppStandIn::from_pem(1, &other_key()).is_ok());
        let err = AppStandIn::from_pem(1, PUBLIC_KEY).expect_err("a public key");
        assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
        assert!(AppStandIn::from_pem(1, "not a key").is_err());
        // A PEM block of the right label that is not a key.
        let broken = pem::encode(&pem::Pem::new("RSA PRIVATE KEY", b"secret bytes".to_vec()));
        let err = AppStandIn::from_pem(1, &broken).expect_err("not a key");
        assert!(!err.to_string().contains("secret"), "{err}");
        let body: String = KEY.lines().nth(1).expect("a line").to_owned();
        let truncated = KEY.replace(&body, "");
        let err = AppStandIn::from_pem(1, &truncated).expect_err("cut");
        assert!(!err.to_string().contains(&KEY[40..60]), "{err}");
        assert_eq!(format!("{:?}", stand_in()), "AppStandIn { app_id: 4242 }");
    }

    #[test]
    fn dates_are_rfc3339_in_utc() {
        for secs in [0, 951_782_400, 1_709_164_800, NOW, 4_102_444_799] {
            let text = rfc3339(secs);
            assert_eq!(
                gantry_core::time::parse_rfc3339(&text),
                Some(secs * 1000),
                "{text}"
            );
        }
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
