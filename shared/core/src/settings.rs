//! A function's settings come from its environment, which `template.yaml`
//! sets: one reader for all of them, with the same errors.

use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The environment through a lookup function (the process environment in
/// Lambda, a table in tests and `gantry dev`). Empty counts as unset.
pub struct Env<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    pub fn or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn required(&self, name: &'static str) -> Result<String, SettingsError> {
        self.get(name).ok_or(SettingsError::Missing(name))
    }

    /// A comma-separated list, items trimmed, blanks dropped; `None` when
    /// the variable is absent. Set but empty is the empty list (an
    /// operator's "none"), unlike the other readers, where empty is unset.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        (self.0)(name).map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }

    /// A number, or `default` when unset.
    pub fn number<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, SettingsError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| SettingsError::Invalid {
                name,
                reason: format!("`{v}` is not a whole number"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_absent_empty_or_its_items() {
        let env = Env(|name: &str| match name {
            "EMPTY" => Some(String::new()),
            "SOME" => Some(" a, ,b ,".to_owned()),
            _ => None,
        });
        assert_eq!(env.list("ABSENT"), None);
        assert_eq!(env.list("EMPTY"), Some(Vec::new()));
        assert_eq!(env.list("SOME"), Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn empty_is_unset_and_bad_numbers_name_the_variable() {
        let env = Env(|name: &str| match name {
            "EMPTY" => Some(String::new()),
            "N" => Some("12".into()),
            "BAD" => Some("twelve".into()),
            _ => None,
        });
        assert!(matches!(
            env.required("EMPTY"),
            Err(SettingsError::Missing("EMPTY"))
        ));
        assert_eq!(env.number("N", 0u64).ok(), Some(12));
        assert_eq!(env.number("UNSET", 7u64).ok(), Some(7));
        let err = env.number("BAD", 0u64).expect_err("not a number");
        assert_eq!(
            err.to_string(),
            "environment variable BAD is invalid: `twelve` is not a whole number"
        );
    }
}
