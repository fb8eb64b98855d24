//! What a build starts from: a clean checkout of one commit, the
//! `CODEBUILD_*` variables, the little of the caller's environment a build
//! may see, and where its log is kept. `gantry build` and the builds
//! `gantry dev` runs share them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The commit could not be checked out.
#[derive(Debug, thiserror::Error)]
#[error("checking out {sha} from {repo}: {reason}")]
pub struct CheckoutError {
    pub repo: String,
    pub sha: String,
    pub reason: String,
}

/// The commit checked out in `dir` as CodeBuild checks out a GitHub
/// source: a clone of the repository with `HEAD` detached at the commit, so
/// `git rev-parse HEAD`, `git describe` and `git log` work in the build;
/// nothing uncommitted is in it. A local clone hard-links the objects: it
/// costs little even for a large history.
pub fn checkout(repo: &Path, sha: &str, dir: &Path) -> Result<(), CheckoutError> {
    let fail = |reason: String| CheckoutError {
        repo: repo.display().to_string(),
        sha: sha.to_owned(),
        reason,
    };
    if sha.starts_with('-') || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(fail("not a commit SHA".into()));
    }
    let run = |command: &mut Command| -> Result<(), CheckoutError> {
        let out = command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(format!("cannot run git: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
        }
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    run(Command::new("git")
        .args(["clone", "--quiet", "--no-checkout", "--local"])
        .arg(repo)
        .arg(dir))?;
    run(Command::new("git").arg("-C").arg(dir).args([
        "-c",
        "advice.detachedHead=false",
        "checkout",
        "--quiet",
        "--detach",
        sha,
    ]))
}

/// Where build logs are kept: `$XDG_CACHE_HOME/gantry/builds` (or
/// `~/.cache/…`, else the temporary directory).
pub fn log_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("gantry").join("builds")
}

/// The file a build's log is kept in: `<project>-<uuid>.log` under
/// [`log_dir`], from the build's id `project:uuid`.
pub fn log_file(build_id: &str) -> PathBuf {
    log_dir().join(format!("{}.log", log_name(build_id)))
}

/// `project-uuid`: a build id made a file name.
pub fn log_name(build_id: &str) -> String {
    build_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// What a build's shell inherits from the caller: enough to find programs
/// and write files, never the caller's credentials or tokens.
const INHERITED: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TMPDIR",
];

/// The caller's values of [`INHERITED`].
pub fn inherited_env() -> Vec<(String, String)> {
    INHERITED
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), std::env::var(k).ok()?)))
        .collect()
}

/// Who and what a build is, for its `CODEBUILD_*` variables.
#[derive(Debug, Clone)]
pub struct Identity<'a> {
    /// `project:uuid`.
    pub id: &'a str,
    pub arn: &'a str,
    pub number: i64,
    /// The commit built.
    pub sha: &'a str,
    /// What the build was asked to build (a commit, or a ref).
    pub source_version: &'a str,
    pub source_url: &'a str,
    pub src_dir: &'a Path,
    /// `CODEBUILD_INITIATOR`.
    pub initiator: &'a str,
    pub image: &'a str,
}

/// The `CODEBUILD_*` variables CodeBuild sets in every build (its
/// "Environment variables in build environments"). The `CODEBUILD_WEBHOOK_*`
/// ones are set only for builds CodeBuild's own webhook starts; Gantry
/// starts builds with StartBuild, where CodeBuild leaves them out, and
/// passes `GANTRY_*` instead.
pub fn codebuild_env(who: &Identity<'_>) -> Vec<(String, String)> {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    [
        ("CODEBUILD_BUILD_ID", who.id.to_owned()),
        ("CODEBUILD_BUILD_ARN", who.arn.to_owned()),
        ("CODEBUILD_BUILD_NUMBER", who.number.to_string()),
        ("CODEBUILD_BUILD_IMAGE", who.image.to_owned()),
        ("CODEBUILD_INITIATOR", who.initiator.to_owned()),
        ("CODEBUILD_RESOLVED_SOURCE_VERSION", who.sha.to_owned()),
        ("CODEBUILD_SOURCE_VERSION", who.source_version.to_owned()),
        ("CODEBUILD_SOURCE_REPO_URL", who.source_url.to_owned()),
        ("CODEBUILD_SRC_DIR", who.src_dir.display().to_string()),
        ("CODEBUILD_START_TIME", started.to_string()),
        ("CODEBUILD_CI", "true".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
