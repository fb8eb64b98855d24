//! Reading the buildspec out of the input artifact: a zip in S3, read with
//! the job's own temporary credentials, a few ranged GETs at a time.
//!
//! The artifact is the whole source tree: up to 3 GB from an S3 source,
//! 1 GB from GitHub or CodeCommit ("Maximum size of artifacts in a source
//! stage", CodePipeline quotas). The function has 256 MB of memory
//! (`template.yaml`), so it never downloads the artifact, nor holds more of
//! it than the buildspec. A zip says at its end where its central directory
//! is, and the directory says where each file's data is (PKWARE
//! APPNOTE.TXT 6.3.10: 4.3.16 end of central directory, 4.3.14–15 its
//! ZIP64 record and locator, 4.3.12 central directory header, 4.3.7 local
//! header, 4.5.3 ZIP64 extra field), so the reading is:
//!
//! 1. the last [`TAIL_BYTES`] (a suffix range, whose `Content-Range` gives
//!    the object's size): the end record, whose comment is at most 65,535
//!    bytes, and the ZIP64 locator and record that precede it (the record
//!    is read on its own if it lies further back). Later GETs carry this
//!    answer's ETag as `If-Match`, so an object replaced meanwhile fails
//!    instead of mixing two zips;
//! 2. the central directory, scanned as it streams in, never held: only
//!    the entry asked for is kept, so memory does not grow with the number
//!    of files; it is refused past [`MAX_DIRECTORY_BYTES`];
//! 3. the entry's local header, then its data, refused past
//!    [`MAX_BUILDSPEC_BYTES`] before it is read, inflated (stored and
//!    deflate only, what zip tools write by default) never past that cap,
//!    and checked against the directory's size and CRC-32.
//!
//! Four requests (five for a ZIP64 record far from the end) and a few MiB
//! of memory (the tail, one streamed piece of the directory, the entry
//! compressed and inflated), whatever the size of the artifact.
//!
//! Here the artifact is chosen and the errors are; `ranged` reads byte
//! ranges of the object (S3 with the job's credentials, pinned to the
//! ETag of the first answer), `zip` finds and inflates the entry.

use aws_lambda_events::event::codepipeline_job::CodePipelineInputArtifact;

mod ranged;
#[cfg(test)]
mod tests;
mod zip;

use ranged::S3Object;
pub use zip::TAIL_BYTES;
use zip::read_entry;

/// A buildspec larger than this is not one (and a zip bomb is not read).
pub const MAX_BUILDSPEC_BYTES: u64 = 1024 * 1024;
/// The central directory is streamed, so this bounds time, not memory: a
/// directory header is 46 bytes plus the path (about 100 bytes for a
/// source tree), so 64 MiB is over half a million files, read in about a
/// second at the 85–90 MB/s one S3 request reaches ("Performance design
/// patterns for Amazon S3"), well inside the function's 60 s timeout.
pub const MAX_DIRECTORY_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("the job has no input artifact{0}")]
    NoInput(String),
    #[error("the job carries no artifact credentials")]
    NoCredentials,
    #[error("cannot download s3://{bucket}/{key}: {reason}")]
    Download {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("input artifact {artifact} is not a readable zip: {reason}")]
    NotAZip { artifact: String, reason: String },
    #[error(
        "the central directory of input artifact {artifact} is {bytes} bytes, more than the {MAX_DIRECTORY_BYTES} this action reads"
    )]
    DirectoryTooLarge { artifact: String, bytes: u64 },
    #[error("{path} not found in input artifact {artifact} ({files} files)")]
    NotFound {
        path: String,
        artifact: String,
        files: u64,
    },
    #[error(
        "{path} appears {count} times in input artifact {artifact}; which one the build would use is unclear"
    )]
    Ambiguous {
        path: String,
        artifact: String,
        count: u64,
    },
    #[error("{path} in input artifact {artifact} cannot be read: {reason}")]
    Unsupported {
        path: String,
        artifact: String,
        reason: String,
    },
    #[error("{path} in input artifact {artifact} is larger than {MAX_BUILDSPEC_BYTES} bytes")]
    TooLarge { path: String, artifact: String },
}

/// The artifact to read: the one named, else the first.
pub fn choose<'a>(
    inputs: &'a [CodePipelineInputArtifact],
    name: Option<&str>,
) -> Result<&'a CodePipelineInputArtifact, ArtifactError> {
    match name {
        Some(name) => inputs
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .ok_or_else(|| ArtifactError::NoInput(format!(" named {name}"))),
        None => inputs
            .first()
            .ok_or_else(|| ArtifactError::NoInput(String::new())),
    }
}

/// The text of `path` in the artifact's zip, read with `s3` (built on the
/// job's credentials); `name` is the artifact's name, for messages.
pub async fn read_file(
    s3: &aws_sdk_s3::Client,
    artifact: &CodePipelineInputArtifact,
    path: &str,
    name: &str,
) -> Result<String, ArtifactError> {
    let location = &artifact.location.s3_location;
    let mut object = S3Object::new(
        s3,
        location.bucket_name.clone().unwrap_or_default(),
        location.object_key.clone().unwrap_or_default(),
    );
    read_entry(&mut object, path, name).await
}
