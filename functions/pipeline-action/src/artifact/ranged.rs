//! Ranged reads of the artifact: [`Ranges`], what the zip reading needs of
//! an object, and [`S3Object`], the object in S3 read with the job's
//! credentials, each read after the first pinned to the ETag it saw.

use aws_sdk_s3::error::ProvideErrorMetadata;
use gantry_aws::describe_sdk_error;

use super::ArtifactError;

/// Ranged reads of one object: S3 in the function, memory in the tests.
pub(crate) trait Ranges {
    /// The object's size, and its last `len` bytes (all of it if it is
    /// shorter). Read first: later reads are of the object this one saw.
    async fn tail(&mut self, len: u64) -> Result<(u64, Vec<u8>), ArtifactError>;

    /// Hands `sink` the bytes `[start, start + len)` in the pieces they
    /// arrive in: exactly `len` bytes, or an error.
    async fn read<F>(&self, start: u64, len: u64, sink: F) -> Result<(), ArtifactError>
    where
        F: FnMut(&[u8]) -> Result<(), ArtifactError> + Send;
}

pub(super) struct S3Object<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: String,
    key: String,
    /// The ETag the tail was read from.
    etag: Option<String>,
}

impl<'a> S3Object<'a> {
    pub(super) fn new(s3: &'a aws_sdk_s3::Client, bucket: String, key: String) -> Self {
        S3Object {
            s3,
            bucket,
            key,
            etag: None,
        }
    }

    fn fail(&self, reason: String) -> ArtifactError {
        ArtifactError::Download {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            reason,
        }
    }
}

impl Ranges for S3Object<'_> {
    async fn tail(&mut self, len: u64) -> Result<(u64, Vec<u8>), ArtifactError> {
        let answer = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes=-{len}"))
            .send()
            .await;
        let mut object = match answer {
            Ok(object) => object,
            // The one range an empty object cannot satisfy.
            Err(e) if e.code() == Some("InvalidRange") => return Ok((0, Vec::new())),
            Err(e) => return Err(self.fail(describe_sdk_error(&e))),
        };
        self.etag = object.e_tag().map(str::to_owned);
        // `bytes 123-456/789`: the size is after the slash.
        let size = object
            .content_range()
            .and_then(|range| range.rsplit_once('/'))
            .and_then(|(_, size)| size.parse::<u64>().ok());
        let mut tail = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        while let Some(piece) = object
            .body
            .try_next()
            .await
            .map_err(|e| self.fail(format!("reading its last {len} bytes: {e}")))?
        {
            // A server that ignores `Range` sends the whole object: stop
            // at the first byte past what was asked.
            if (tail.len() + piece.len()) as u64 > len {
                return Err(self.fail(format!(
                    "S3 answered a request for its last {len} bytes with more"
                )));
            }
            tail.extend_from_slice(&piece);
        }
        // Without `Content-Range` the answer was the whole object.
        let size = size.unwrap_or(tail.len() as u64);
        if tail.len() as u64 != size.min(len) {
            return Err(self.fail(format!(
                "S3 answered a request for the last {len} bytes of {size} with {}",
                tail.len()
            )));
        }
        Ok((size, tail))
    }

    async fn read<F>(&self, start: u64, len: u64, mut sink: F) -> Result<(), ArtifactError>
    where
        F: FnMut(&[u8]) -> Result<(), ArtifactError> + Send,
    {
        if len == 0 {
            return Ok(());
        }
        let last = start.saturating_add(len - 1);
        let mut object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={start}-{last}"))
            .set_if_match(self.etag.clone())
            .send()
            .await
            .map_err(|e| self.fail(describe_sdk_error(&e)))?;
        let mut got: u64 = 0;
        while let Some(piece) = object
            .body
            .try_next()
            .await
            .map_err(|e| self.fail(format!("reading bytes {start}-{last}: {e}")))?
        {
            got = got.saturating_add(piece.len() as u64);
            // A server that ignores `Range` sends the whole object: stop at
            // the first byte past what was asked.
            if got > len {
                return Err(self.fail(format!(
                    "S3 answered bytes {start}-{last} with more than {len} bytes"
                )));
            }
            sink(&piece)?;
        }
        if got < len {
            return Err(self.fail(format!(
                "S3 answered bytes {start}-{last} with {got} of {len} bytes"
            )));
        }
        Ok(())
    }
}

/// `[start, start + len)` of `object`, in memory; only for small reads.
pub(super) async fn read_vec<R: Ranges>(
    object: &R,
    start: u64,
    len: u64,
) -> Result<Vec<u8>, ArtifactError> {
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    object
        .read(start, len, |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })
        .await?;
    Ok(out)
}
