//! The identifiers that cross Gantry's seams, as types: a commit SHA is not
//! a correlation id, and a build's ARN is not its id, even though all of
//! them are strings on the wire. Each serializes as the bare string, so the
//! event contract and stored records read exactly as before.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

id!(
    /// A Git commit, as the 40 hex digits GitHub sends.
    CommitSha
);

id!(
    /// One delivery's journey through the chain: the GitHub delivery id
    /// (or, for a re-run, a fresh one), in every event and log line.
    CorrelationId
);

id!(
    /// A repository as `owner/name`.
    RepoName
);

id!(
    /// A CodeBuild build id: `<project>:<uuid>`.
    BuildId
);

id!(
    /// A CodeBuild build ARN:
    /// `arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>`.
    /// CodeBuild's state-change events call it `build-id`.
    BuildArn
);

impl CommitSha {
    /// The first seven characters, as GitHub shows a commit.
    pub fn short(&self) -> &str {
        self.0.get(..7).unwrap_or(&self.0)
    }
}

impl BuildId {
    /// The project and the uuid; an id without a `:` is all uuid.
    pub fn parts(&self) -> (Option<&str>, &str) {
        match self.0.split_once(':') {
            Some((project, uuid)) => (Some(project), uuid),
            None => (None, &self.0),
        }
    }
}

impl BuildArn {
    /// The build id the ARN ends with (`build/<project>:<uuid>`). An ARN
    /// in some other shape is kept whole: it is still the build's name.
    pub fn id(&self) -> BuildId {
        BuildId(
            self.0
                .rsplit_once(":build/")
                .map_or(self.0.as_str(), |(_, id)| id)
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identifier_is_its_bare_string_on_the_wire() {
        let sha = CommitSha::new("9f2c1e4d00000000000000000000000000000000");
        let json = serde_json::to_string(&sha).expect("serializes");
        assert_eq!(json, r#""9f2c1e4d00000000000000000000000000000000""#);
        let back: CommitSha = serde_json::from_str(&json).expect("reads");
        assert_eq!(back, sha);
        assert_eq!(sha.short(), "9f2c1e4");
    }

    #[test]
    fn an_arn_names_its_build() {
        let arn = BuildArn::new(
            "arn:aws:codebuild:eu-west-1:123456789012:build/gantry-build:7f1c2d3e-aaaa",
        );
        assert_eq!(arn.id(), "gantry-build:7f1c2d3e-aaaa");
        assert_eq!(arn.id().parts(), (Some("gantry-build"), "7f1c2d3e-aaaa"));
        assert_eq!(BuildArn::new("odd").id(), "odd");
    }
}
