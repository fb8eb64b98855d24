//! Running git on a repository the user names: `gantry build`, `gantry
//! send --push` and `gantry dev`'s GitHub stand-in read commits with it.

use std::path::Path;
use std::process::{Command, Stdio};

/// `git -C <repo> <args…>`'s output, trimmed at the end; its error
/// output (or why it could not run) otherwise.
pub fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}
