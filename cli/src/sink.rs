//! A local HTTP sink for `gantry dev`: stands for GitHub (the contents
//! API, read from a local git repository; the status API, printed) and for
//! the chat webhooks, prints each request it receives on one line, and
//! answers as they do (201 for a status, 200 otherwise). Given an
//! [`AppStandIn`], it is GitHub as a GitHub App sees it: installation
//! tokens for the App's JWT, and every GitHub request checked against the
//! token it carries (see [`crate::standin`]).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use tokio::net::TcpListener;

use crate::standin::AppStandIn;

/// `GET /repos/{owner}/{name}/contents/{path}?ref={sha}`: the file at the
/// commit in the local repository (whatever the repository's name: the
/// stand-in serves the one repository `gantry dev` was given), raw, as
/// GitHub answers `application/vnd.github.raw+json`; 404 when it is not
/// there.
fn contents(repo: Option<&Path>, path: &str, query: Option<&str>) -> Option<(u16, Vec<u8>)> {
    let rest = path.strip_prefix("/repos/")?;
    let mut parts = rest.splitn(4, '/');
    let (_owner, _name, contents, file) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if contents != "contents" {
        return None;
    }
    let git_ref = query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("ref="))?
        .to_owned();
    let not_found = (404, br#"{"message":"Not Found"}"#.to_vec());
    let Some(repo) = repo else {
        return Some(not_found);
    };
    let ok_ref = git_ref
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    let ok_file = !file.contains("..") && !file.starts_with('/');
    if !ok_ref || !ok_file || git_ref.starts_with('-') {
        return Some(not_found);
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["show", &format!("{git_ref}:{file}")])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    Some(if out.status.success() {
        (200, out.stdout)
    } else {
        not_found
    })
}

/// `GET /repos/{owner}/{name}` and `GET /repos/{owner}/{name}/commits/{ref}`
/// (the commit's id as text, as `application/vnd.github.sha` asks), for
/// `gantry run` and the schedule function: the repository as GitHub
/// describes it (its default branch is the local repository's current
/// one), and a ref resolved in the local repository.
fn repository(repo: Option<&Path>, path: &str) -> Option<(u16, Vec<u8>)> {
    let rest = path.strip_prefix("/repos/")?;
    let mut parts = rest.splitn(4, '/');
    let (owner, name) = (parts.next()?, parts.next()?);
    let not_found = (404, br#"{"message":"Not Found"}"#.to_vec());
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !plain(owner) || !plain(name) {
        return None;
    }
    let git = |args: &[&str]| -> Option<String> {
        let repo = repo?;
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    match (parts.next(), parts.next()) {
        (None, None) => {
            let branch = git(&["symbolic-ref", "--short", "HEAD"]).unwrap_or_else(|| "main".into());
            let body = serde_json::json!({
                "full_name": format!("{owner}/{name}"),
                "name": name,
                "owner": { "login": owner },
                "clone_url": format!("https://github.com/{owner}/{name}.git"),
                "html_url": format!("https://github.com/{owner}/{name}"),
                "default_branch": branch,
                "private": false,
            });
            Some((200, body.to_string().into_bytes()))
        }
        (Some("commits"), Some(git_ref)) => {
            let ok = git_ref
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
                && !git_ref.starts_with('-')
                && !git_ref.contains("..");
            if !ok {
                return Some(not_found);
            }
            match git(&[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{git_ref}^{{commit}}"),
            ]) {
                Some(sha) => Some((200, sha.into_bytes())),
                None => Some((
                    422,
                    format!(r#"{{"message":"No commit found for SHA: {git_ref}"}}"#).into_bytes(),
                )),
            }
        }
        _ => None,
    }
}

/// The prefix the builds' logs are served under: `GET /logs/<file>` is the
/// file of that name in the log directory.
pub const LOGS_PATH: &str = "/logs";

/// `GET /logs/<project>-<uuid>.log`: a build's log, as the failure status
/// and the chat message link it. Only plain file names of the log
/// directory are served.
fn log(path: &str) -> Option<(u16, Vec<u8>)> {
    let name = path.strip_prefix(LOGS_PATH)?.strip_prefix('/')?;
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let not_found = (404, b"no such log\n".to_vec());
    if !plain {
        return Some(not_found);
    }
    let file = gantry_local::executor::source::log_dir().join(name);
    Some(match std::fs::read(file) {
        Ok(text) => (200, text),
        Err(_) => not_found,
    })
}

/// What the sink stands for besides the chat webhooks.
#[derive(Debug, Default)]
pub struct SinkOptions {
    /// The git repository the contents API reads (none: every file is not
    /// found).
    pub repo: Option<PathBuf>,
    /// GitHub App mode: the token exchange, check runs, and every GitHub
    /// request refused unless its installation token allows it. Without
    /// one, any token (or none) is taken, as a personal token would be.
    pub app: Option<AppStandIn>,
}

/// Serves the sink on `listener` until the task is dropped; each request
/// is printed as `sink: METHOD PATH BODY` (or, for what the GitHub
/// stand-in answers, `github: …`).
pub async fn serve(listener: TcpListener, options: SinkOptions) {
    let options = Arc::new(options);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let options = Arc::clone(&options);
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let options = Arc::clone(&options);
                async move {
                    let repo = &options.repo;
                    let (parts, body) = req.into_parts();
                    if parts.method == http::Method::GET
                        && let Some((status, body)) = log(parts.uri.path())
                    {
                        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() =
                            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("text/plain; charset=utf-8"),
                        );
                        return Ok::<_, Infallible>(response);
                    }
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    if let Some(app) = &options.app
                        && let Some(answer) = app.route(
                            &parts.method,
                            parts.uri.path(),
                            parts
                                .headers
                                .get(http::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok()),
                            &body,
                            crate::standin::now(),
                        )
                    {
                        println!("{}", answer.line);
                        let mut response =
                            hyper::Response::new(Full::new(Bytes::from(answer.body)));
                        *response.status_mut() = http::StatusCode::from_u16(answer.status)
                            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json; charset=utf-8"),
                        );
                        return Ok::<_, Infallible>(response);
                    }
                    if parts.method == http::Method::GET
                        && let Some((status, body)) =
                            contents(repo.as_deref(), parts.uri.path(), parts.uri.query())
                                .or_else(|| repository(repo.as_deref(), parts.uri.path()))
                    {
                        println!("  github: GET {} → {status}", parts.uri);
                        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() =
                            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                        return Ok::<_, Infallible>(response);
                    }
                    let text = String::from_utf8_lossy(&body);
                    println!(
                        "  sink: {} {} {}",
                        parts.method,
                        parts.uri.path(),
                        text.trim()
                    );
                    let status = if parts.uri.path().contains("/statuses/") {
                        201
                    } else {
                        200
                    };
                    let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                    *response.status_mut() =
                        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}
