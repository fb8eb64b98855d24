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
}
