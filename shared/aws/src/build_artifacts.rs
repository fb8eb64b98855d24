//! A build's artifacts in the bucket, as its page lists them: the files
//! under the place CodeBuild uploaded them, each with a short-lived signed
//! link, so that whoever may open the page can download them without an
//! AWS account.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use gantry_core::page::html::{ArtifactFile, ArtifactList};
use gantry_core::records::ArtifactsPlace;

use crate::artifacts::S3Error;
use crate::describe_sdk_error;

/// The page lists at most this many files.
pub const MAX_LISTED: i32 = 100;
/// How long a file's link opens it.
pub const LINK_MINUTES: u64 = 60;

/// The files under `place`, in key order, each with a download link.
pub async fn list(
    s3: &aws_sdk_s3::Client,
    place: &ArtifactsPlace,
) -> Result<ArtifactList, S3Error> {
    let error = |key: &str, reason: String| S3Error {
        bucket: place.bucket.clone(),
        key: key.to_owned(),
        reason,
    };
    let listed = s3
        .list_objects_v2()
        .bucket(&place.bucket)
        .prefix(&place.prefix)
        .max_keys(MAX_LISTED)
        .send()
        .await
        .map_err(|e| error(&place.prefix, describe_sdk_error(&e)))?;
    let expires = PresigningConfig::expires_in(Duration::from_secs(LINK_MINUTES * 60))
        .map_err(|e| error(&place.prefix, e.to_string()))?;
    let mut files = Vec::new();
    for object in listed.contents() {
        let Some(key) = object.key() else { continue };
        let Some(name) = key.strip_prefix(place.prefix.as_str()) else {
            continue;
        };
        // A folder's marker object is no file.
        if name.is_empty() || name.ends_with('/') {
            continue;
        }
        let signed = s3
            .get_object()
            .bucket(&place.bucket)
            .key(key)
            // Downloaded, never shown as a page on the bucket's origin.
            .response_content_disposition("attachment")
            .presigned(expires.clone())
            .await
            .map_err(|e| error(key, describe_sdk_error(&e)))?;
        files.push(ArtifactFile {
            name: name.to_owned(),
            url: signed.uri().to_owned(),
            bytes: object
                .size()
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0),
        });
    }
    Ok(ArtifactList {
        files,
        more: listed.is_truncated().unwrap_or(false),
        link_minutes: LINK_MINUTES,
    })
}
