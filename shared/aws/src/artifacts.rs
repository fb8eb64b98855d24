//! Text objects in the artifact bucket: default buildspecs, and validated
//! buildspecs too large to travel in an event.

use super::describe_sdk_error;
use gantry_core::events::{BuildspecBody, INLINE_BUILDSPEC_BYTES};

#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {reason}")]
pub struct S3Error {
    pub bucket: String,
    pub key: String,
    pub reason: String,
}

/// The object's text; `None` if there is no such key.
pub async fn get_text(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<String>, S3Error> {
    let error = |reason: String| S3Error {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let object = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(object) => object,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(error(describe_sdk_error(&e))),
    };
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| error(e.to_string()))?
        .into_bytes();
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Where a buildspec travels: in the event when small enough, else under
/// `validated/<sha256>.yml`. Returns `(inline, s3_key)`.
pub async fn place_buildspec(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    text: String,
    digest: &str,
) -> Result<BuildspecBody, S3Error> {
    if text.len() <= INLINE_BUILDSPEC_BYTES {
        return Ok(BuildspecBody::Inline { inline: text });
    }
    let key = format!("validated/{}.yml", digest.trim_start_matches("sha256:"));
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/yaml")
        .body(text.into_bytes().into())
        .send()
        .await
        .map_err(|e| S3Error {
            bucket: bucket.to_owned(),
            key: key.clone(),
            reason: describe_sdk_error(&e),
        })?;
    Ok(BuildspecBody::S3 { s3_key: key })
}
