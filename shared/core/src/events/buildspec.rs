//! The validated buildspec as it travels from validate-buildspec through
//! inject-secrets to start-build: where it was read, and its text (in the
//! event, or in S3 under its digest). Both are types, so a reference
//! without a body cannot be built and a location is never cut apart again.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{CommitSha, RepoName};

/// Where a validated buildspec came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildspecOrigin {
    /// The file in the repository at the commit being built.
    Repository,
    /// The file at the base commit of a pull request from a fork: the
    /// fork's own buildspec is never run.
    BaseBranch,
    /// The project's default buildspec, deployed to S3.
    ProjectDefault,
}

/// Where a buildspec is read. On the wire it is one string,
/// `owner/name:path@sha` or `s3://bucket/key`, as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildspecLocation {
    /// A file in a repository at a commit.
    Repository {
        repo: RepoName,
        path: String,
        commit: CommitSha,
    },
    /// An object in S3 (the project's default buildspec).
    S3 { bucket: String, key: String },
}

impl BuildspecLocation {
    /// The file's path as a person names it: its path in the repository,
    /// or its S3 key.
    pub fn path(&self) -> &str {
        match self {
            BuildspecLocation::Repository { path, .. } => path,
            BuildspecLocation::S3 { key, .. } => key,
        }
    }

    /// Reads the string form. Events written before this was a type may
    /// carry inject-secrets' old suffix, which is dropped.
    pub fn parse(text: &str) -> Option<BuildspecLocation> {
        let text = text
            .strip_suffix(" (secret references removed)")
            .unwrap_or(text);
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/')?;
            return Some(BuildspecLocation::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        let (repo_path, commit) = text.rsplit_once('@')?;
        let (repo, path) = repo_path.split_once(':')?;
        if repo.is_empty() || path.is_empty() || commit.is_empty() {
            return None;
        }
        Some(BuildspecLocation::Repository {
            repo: repo.into(),
            path: path.to_owned(),
            commit: commit.into(),
        })
    }
}

impl fmt::Display for BuildspecLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildspecLocation::Repository { repo, path, commit } => {
                write!(f, "{repo}:{path}@{commit}")
            }
            BuildspecLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

impl Serialize for BuildspecLocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BuildspecLocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        BuildspecLocation::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a buildspec location (owner/name:path@sha or s3://bucket/key)"
            ))
        })
    }
}

/// A buildspec's text: in the event when small, else in S3 under its
/// digest. On the wire, the field `inline` or the field `s3_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BuildspecBody {
    Inline { inline: String },
    S3 { s3_key: String },
}

/// A validated buildspec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildspecRef {
    pub origin: BuildspecOrigin,
    /// Where it was read.
    pub location: BuildspecLocation,
    /// `sha256:<hex>` of the exact bytes validated (for a build without
    /// secrets, of the text it runs: the one with its secret references
    /// removed).
    pub digest: String,
    #[serde(flatten)]
    pub body: BuildspecBody,
    /// The text is the file's with its `env.parameter-store` and
    /// `env.secrets-manager` removed: an untrusted build gets no secrets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secrets_removed: bool,
    /// `env.parameter-store` of the buildspec: variable → SSM parameter name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter_store: Vec<(String, String)>,
    /// `env.secrets-manager` of the buildspec: variable → secret reference
    /// (`secret-id[:json-key[:version-stage[:version-id]]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets_manager: Vec<(String, String)>,
    /// The buildspec has an `artifacts` section: start-build has CodeBuild
    /// upload them under the build's prefix in the bucket.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub artifacts: bool,
}

impl BuildspecRef {
    /// The text, when it travels in the event.
    pub fn inline(&self) -> Option<&str> {
        match &self.body {
            BuildspecBody::Inline { inline } => Some(inline),
            BuildspecBody::S3 { .. } => None,
        }
    }

    /// The S3 key of the text, when it was too large for the event.
    pub fn s3_key(&self) -> Option<&str> {
        match &self.body {
            BuildspecBody::S3 { s3_key } => Some(s3_key),
            BuildspecBody::Inline { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_reads_back_as_it_was_written() {
        for text in [
            "octo-org/widgets:ci/buildspec.yml@9f2c1e4",
            "s3://gantry-artifacts/buildspecs/default.yml",
        ] {
            let location = BuildspecLocation::parse(text).expect("parses");
            assert_eq!(location.to_string(), text);
        }
        let location =
            BuildspecLocation::parse("octo-org/widgets:ci/build@spec.yml@9f2c1e4").expect("parses");
        assert_eq!(
            location.path(),
            "ci/build@spec.yml",
            "the last @ ends the path"
        );
    }

    #[test]
    fn a_reference_written_before_it_was_typed_reads_the_same() {
        // What validate-buildspec and inject-secrets published before the
        // body and the location were types.
        let inline = r#"{"origin":"repository","location":"Codertocat/Hello-World:buildspec.yml@6113728",
            "digest":"sha256:ab","inline":"version: 0.2\n"}"#;
        let r: BuildspecRef = serde_json::from_str(inline).expect("reads");
        assert_eq!(
            r.body,
            BuildspecBody::Inline {
                inline: "version: 0.2\n".into()
            }
        );
        assert_eq!(r.location.path(), "buildspec.yml");
        let json = serde_json::to_value(&r).expect("writes");
        assert_eq!(json["inline"], "version: 0.2\n");
        assert_eq!(
            json["location"],
            "Codertocat/Hello-World:buildspec.yml@6113728"
        );
        assert!(json.get("secrets_removed").is_none());

        let stripped = r#"{"origin":"repository","digest":"sha256:cd","s3_key":"validated/cd.yml",
            "location":"Codertocat/Hello-World:buildspec.yml@6113728 (secret references removed)"}"#;
        let r: BuildspecRef = serde_json::from_str(stripped).expect("reads");
        assert_eq!(
            r.body,
            BuildspecBody::S3 {
                s3_key: "validated/cd.yml".into()
            }
        );
        assert_eq!(r.location.path(), "buildspec.yml");
    }

    #[test]
    fn a_reference_without_a_body_is_refused() {
        let none = r#"{"origin":"repository","location":"a/b:c@d","digest":"sha256:ab"}"#;
        assert!(serde_json::from_str::<BuildspecRef>(none).is_err());
    }
}
