//! Reading the buildspec out of the input artifact: a zip in S3, read with
//! the job's own temporary credentials.

use std::io::Read;

use aws_lambda_events::event::codepipeline_job::CodePipelineInputArtifact;
use gantry_shared::aws::describe_sdk_error;

/// A buildspec larger than this is not one (and a zip bomb is not read).
pub const MAX_BUILDSPEC_BYTES: u64 = 1024 * 1024;
/// The artifact zip itself.
pub const MAX_ARTIFACT_BYTES: usize = 512 * 1024 * 1024;

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
    #[error("{path} not found in input artifact {artifact} ({files} files)")]
    NotFound {
        path: String,
        artifact: String,
        files: usize,
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

/// Downloads the artifact's zip with `s3` (built on the job's credentials).
pub async fn download(
    s3: &aws_sdk_s3::Client,
    artifact: &CodePipelineInputArtifact,
) -> Result<Vec<u8>, ArtifactError> {
    let location = &artifact.location.s3_location;
    let bucket = location.bucket_name.clone().unwrap_or_default();
    let key = location.object_key.clone().unwrap_or_default();
    let fail = |reason: String| ArtifactError::Download {
        bucket: bucket.clone(),
        key: key.clone(),
        reason,
    };
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| fail(describe_sdk_error(&e)))?;
    if object
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > MAX_ARTIFACT_BYTES))
    {
        return Err(fail(format!("larger than {MAX_ARTIFACT_BYTES} bytes")));
    }
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(bytes.into_bytes().to_vec())
}

/// The text of `path` in the zip `bytes`.
pub fn read_file(bytes: &[u8], path: &str, artifact: &str) -> Result<String, ArtifactError> {
    let wanted = path.trim_start_matches("./");
    let not_a_zip = |e: zip::result::ZipError| ArtifactError::NotAZip {
        artifact: artifact.to_owned(),
        reason: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(not_a_zip)?;
    let files = archive.len();
    let mut file = match archive.by_name(wanted) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(ArtifactError::NotFound {
                path: wanted.to_owned(),
                artifact: artifact.to_owned(),
                files,
            });
        }
        Err(e) => return Err(not_a_zip(e)),
    };
    let too_large = || ArtifactError::TooLarge {
        path: wanted.to_owned(),
        artifact: artifact.to_owned(),
    };
    if file.size() > MAX_BUILDSPEC_BYTES {
        return Err(too_large());
    }
    // The size in the header may lie; never read more than the cap.
    let mut buf = Vec::new();
    (&mut file)
        .take(MAX_BUILDSPEC_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ArtifactError::NotAZip {
            artifact: artifact.to_owned(),
            reason: e.to_string(),
        })?;
    if buf.len() as u64 > MAX_BUILDSPEC_BYTES {
        return Err(too_large());
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
