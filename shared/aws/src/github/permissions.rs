//! Reading a person's permission on a repository (see
//! `gantry_core::github::permissions`).

use super::contents::{GitHubClient, GitHubError};
use super::statuses::{check_repo, error_from};
use crate::secrets::Secret;
use gantry_core::github::permissions::Permission;

/// A GitHub login: letters, digits and single hyphens, at most 39.
pub fn check_login(login: &str) -> Result<(), GitHubError> {
    // An App's bot user is `<slug>[bot]`.
    let name = login.strip_suffix("[bot]").unwrap_or(login);
    let ok = (1..=39).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(GitHubError::BadPath {
            path: login.to_owned(),
            reason: "not a GitHub login",
        })
    }
}

impl GitHubClient {
    /// `user`'s permission on `repo` (`owner/name`). Someone GitHub does
    /// not know as a collaborator (404) has `none`.
    pub async fn permission(
        &self,
        repo: &str,
        user: &str,
        token: &Secret,
    ) -> Result<Permission, GitHubError> {
        let (owner, name) = check_repo(repo)?;
        check_login(user)?;
        let what = format!("the permission of {user} on {repo}");
        let url = self.url(&["repos", owner, name, "collaborators", user, "permission"])?;
        let response = self.call(self.http.get(url), Some(token), &what).await?;
        match response.status().as_u16() {
            200 => response
                .json::<Permission>()
                .await
                .map_err(|_| GitHubError::Transient {
                    what,
                    reason: "unreadable answer".into(),
                }),
            404 => Ok(Permission {
                permission: "none".into(),
                role_name: None,
            }),
            _ => Err(error_from(response, what, token).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_never_reaches_the_url_unchecked() {
        assert!(check_login("octocat").is_ok());
        assert!(check_login("dependabot[bot]").is_ok());
        for bad in [
            "",
            "a/b",
            "../x",
            "a b",
            "a/b[bot]",
            "[bot]",
            &"x".repeat(40),
        ] {
            assert!(check_login(bad).is_err(), "{bad:?}");
        }
    }
}
