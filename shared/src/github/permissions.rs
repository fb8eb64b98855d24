//! Who may approve: a person's permission on a repository
//! (`GET /repos/{owner}/{repo}/collaborators/{username}/permission`).
//!
//! GitHub answers `permission` as the base role (`admin`, `write`, `read`
//! or `none`: `maintain` reads as `write`, `triage` as `read`) and
//! `role_name` as the role itself. Only someone who could push the commit
//! themselves (write, maintain, admin) may approve a fork's commit to build
//! with the repository's secrets: the Triage role can add labels but not
//! push. The token needs "Metadata: read" (fine-grained).

use serde::Deserialize;

use super::contents::{API_VERSION, GitHubClient, GitHubError, transport};
use super::statuses::{check_repo, error_from};
use crate::aws::secrets::Secret;

/// A person's access to one repository.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Permission {
    /// `admin`, `write`, `read` or `none`.
    pub permission: String,
    /// `admin`, `maintain`, `write`, `triage`, `read` or a custom role.
    #[serde(default)]
    pub role_name: Option<String>,
}

impl Permission {
    /// Could this person push to the repository?
    pub fn can_push(&self) -> bool {
        matches!(self.permission.as_str(), "admin" | "write")
    }

    /// For a person: the role, else the base permission.
    pub fn describe(&self) -> &str {
        self.role_name.as_deref().unwrap_or(&self.permission)
    }
}

/// A GitHub login: letters, digits and single hyphens, at most 39.
fn check_login(login: &str) -> Result<(), GitHubError> {
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
        let response = self
            .http
            .get(url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| GitHubError::Transient {
                what: what.clone(),
                reason: transport(&e),
            })?;
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

    fn p(permission: &str, role: Option<&str>) -> Permission {
        Permission {
            permission: permission.into(),
            role_name: role.map(str::to_owned),
        }
    }

    #[test]
    fn only_those_who_could_push_may_approve() {
        assert!(p("admin", Some("admin")).can_push());
        assert!(p("write", Some("maintain")).can_push());
        assert!(p("write", Some("write")).can_push());
        assert!(!p("read", Some("triage")).can_push());
        assert!(!p("read", Some("read")).can_push());
        assert!(!p("none", None).can_push());
        assert_eq!(p("read", Some("triage")).describe(), "triage");
    }

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
