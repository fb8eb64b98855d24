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

use std::io::Read;

use aws_lambda_events::event::codepipeline_job::CodePipelineInputArtifact;
use aws_sdk_s3::error::ProvideErrorMetadata;
use gantry_aws::describe_sdk_error;

/// A buildspec larger than this is not one (and a zip bomb is not read).
pub const MAX_BUILDSPEC_BYTES: u64 = 1024 * 1024;
/// The central directory is streamed, so this bounds time, not memory: a
/// directory header is 46 bytes plus the path (about 100 bytes for a
/// source tree), so 64 MiB is over half a million files, read in about a
/// second at the 85–90 MB/s one S3 request reaches ("Performance design
/// patterns for Amazon S3"), well inside the function's 60 s timeout.
pub const MAX_DIRECTORY_BYTES: u64 = 64 * 1024 * 1024;
/// Compressed data a buildspec of [`MAX_BUILDSPEC_BYTES`] can take: deflate
/// adds at most 5 bytes per 65,535 of stored block (RFC 1951, 3.2.4), so
/// 64 KiB of slack is far more than any encoder needs.
const MAX_COMPRESSED_BYTES: u64 = MAX_BUILDSPEC_BYTES + 64 * 1024;

/// The end-of-central-directory record: 22 bytes and a comment.
const EOCD_LEN: u64 = 22;
const MAX_COMMENT_LEN: u64 = 0xFFFF;
const ZIP64_LOCATOR_LEN: u64 = 20;
/// The ZIP64 end record without its extensible data.
const ZIP64_EOCD_LEN: u64 = 56;
/// What the first read takes from the end: the longest end record, and the
/// ZIP64 locator and record right before it.
pub const TAIL_BYTES: u64 = EOCD_LEN + MAX_COMMENT_LEN + ZIP64_LOCATOR_LEN + ZIP64_EOCD_LEN;
const CENTRAL_HEADER_LEN: usize = 46;
const LOCAL_HEADER_LEN: u64 = 30;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const ZIP64_EXTRA_ID: u16 = 0x0001;

const STORED: u16 = 0;
const DEFLATED: u16 = 8;

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
    let mut object = S3Object {
        s3,
        bucket: location.bucket_name.clone().unwrap_or_default(),
        key: location.object_key.clone().unwrap_or_default(),
        etag: None,
    };
    read_entry(&mut object, path, name).await
}

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

struct S3Object<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: String,
    key: String,
    /// The ETag the tail was read from.
    etag: Option<String>,
}

impl S3Object<'_> {
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
async fn read_vec<R: Ranges>(object: &R, start: u64, len: u64) -> Result<Vec<u8>, ArtifactError> {
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    object
        .read(start, len, |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })
        .await?;
    Ok(out)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        bytes.copy_from_slice(s);
    }
    u64::from_le_bytes(bytes)
}

/// Where the central directory is, from the end records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Directory {
    offset: u64,
    size: u64,
}

/// One file's place in the zip, from its central directory header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    offset: u64,
}

/// Reads the directory's place from the end of `object`; also gives the
/// object's size.
async fn locate_directory<R: Ranges>(
    object: &mut R,
    artifact: &str,
) -> Result<(Directory, u64), ArtifactError> {
    let not_a_zip = |reason: String| ArtifactError::NotAZip {
        artifact: artifact.to_owned(),
        reason,
    };
    let (size, tail) = object.tail(TAIL_BYTES).await?;
    if size < EOCD_LEN {
        return Err(not_a_zip(format!("it is only {size} bytes long")));
    }
    let tail_start = size - tail.len() as u64;
    // The last signature whose comment ends within the file: the record
    // ends the file, and its comment is free text.
    let eocd = (0..=tail.len() - EOCD_LEN as usize)
        .rev()
        .find(|&i| {
            u32_at(&tail, i) == EOCD_SIG
                && i + EOCD_LEN as usize + usize::from(u16_at(&tail, i + 20)) <= tail.len()
        })
        .ok_or_else(|| {
            not_a_zip(format!(
                "no end-of-central-directory record in its last {} bytes (a truncated file?)",
                tail.len()
            ))
        })?;
    let eocd_at = tail_start + eocd as u64;
    let (disk, directory_disk) = (u16_at(&tail, eocd + 4), u16_at(&tail, eocd + 6));
    let mut directory = Directory {
        size: u64::from(u32_at(&tail, eocd + 12)),
        offset: u64::from(u32_at(&tail, eocd + 16)),
    };
    let mut end = eocd_at;
    let locator = eocd.checked_sub(ZIP64_LOCATOR_LEN as usize);
    if let Some(at) = locator.filter(|&at| u32_at(&tail, at) == ZIP64_LOCATOR_SIG) {
        if u32_at(&tail, at + 4) != 0 || u32_at(&tail, at + 16) > 1 {
            return Err(not_a_zip("it spans several disks".into()));
        }
        let record_at = u64_at(&tail, at + 8);
        if record_at.saturating_add(ZIP64_EOCD_LEN) > tail_start + at as u64 {
            return Err(not_a_zip(format!(
                "its ZIP64 end record is said to be at {record_at}, past its locator"
            )));
        }
        // Usually right before the locator, so in the tail already.
        let in_tail = record_at
            .checked_sub(tail_start)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| tail.get(i..i + ZIP64_EOCD_LEN as usize));
        let record = match in_tail {
            Some(record) => record.to_vec(),
            None => read_vec(&*object, record_at, ZIP64_EOCD_LEN).await?,
        };
        if u32_at(&record, 0) != ZIP64_EOCD_SIG {
            return Err(not_a_zip(format!("no ZIP64 end record at {record_at}")));
        }
        if u32_at(&record, 16) != 0 || u32_at(&record, 20) != 0 {
            return Err(not_a_zip("it spans several disks".into()));
        }
        directory = Directory {
            size: u64_at(&record, 40),
            offset: u64_at(&record, 48),
        };
        end = record_at;
    } else if disk != 0 || directory_disk != 0 {
        return Err(not_a_zip("it spans several disks".into()));
    }
    if directory.size > MAX_DIRECTORY_BYTES {
        return Err(ArtifactError::DirectoryTooLarge {
            artifact: artifact.to_owned(),
            bytes: directory.size,
        });
    }
    if directory.offset.saturating_add(directory.size) > end {
        return Err(not_a_zip(format!(
            "its central directory ({} bytes at {}) runs past the end record at {end}",
            directory.size, directory.offset
        )));
    }
    Ok((directory, size))
}

/// Scans central directory headers as they stream in, keeping only those
/// named `wanted`.
struct DirectoryScan<'w> {
    wanted: &'w [u8],
    /// Bytes of a header not complete yet.
    pending: Vec<u8>,
    files: u64,
    found: Option<Entry>,
    matches: u64,
}

impl<'w> DirectoryScan<'w> {
    fn new(wanted: &'w str) -> Self {
        DirectoryScan {
            wanted: wanted.as_bytes(),
            pending: Vec::new(),
            files: 0,
            found: None,
            matches: 0,
        }
    }

    fn feed(&mut self, piece: &[u8]) -> Result<(), String> {
        self.pending.extend_from_slice(piece);
        let mut at = 0;
        while let Some(header) = self.pending.get(at..at + CENTRAL_HEADER_LEN) {
            if u32_at(header, 0) != CENTRAL_SIG {
                return Err(format!(
                    "central directory entry {} has no header signature",
                    self.files + 1
                ));
            }
            let name_len = usize::from(u16_at(header, 28));
            let extra_len = usize::from(u16_at(header, 30));
            let comment_len = usize::from(u16_at(header, 32));
            let whole = CENTRAL_HEADER_LEN + name_len + extra_len + comment_len;
            let Some(record) = self.pending.get(at..at + whole) else {
                break;
            };
            self.files += 1;
            let name = &record[CENTRAL_HEADER_LEN..CENTRAL_HEADER_LEN + name_len];
            if name == self.wanted {
                self.matches += 1;
                let extra = &record[CENTRAL_HEADER_LEN + name_len..][..extra_len];
                self.found = Some(entry(record, extra)?);
            }
            at += whole;
        }
        self.pending.drain(..at);
        Ok(())
    }

    fn finish(self) -> Result<(u64, u64, Option<Entry>), String> {
        if !self.pending.is_empty() {
            return Err(format!(
                "the central directory ends inside entry {}",
                self.files + 1
            ));
        }
        Ok((self.files, self.matches, self.found))
    }
}

/// The entry a central directory `header` describes; values too large for
/// their 32-bit field are in the ZIP64 extra field of `extra`, in order.
fn entry(header: &[u8], extra: &[u8]) -> Result<Entry, String> {
    let mut e = Entry {
        flags: u16_at(header, 8),
        method: u16_at(header, 10),
        crc: u32_at(header, 16),
        compressed: u64::from(u32_at(header, 20)),
        uncompressed: u64::from(u32_at(header, 24)),
        offset: u64::from(u32_at(header, 42)),
    };
    let wide = [
        e.uncompressed == 0xFFFF_FFFF,
        e.compressed == 0xFFFF_FFFF,
        e.offset == 0xFFFF_FFFF,
    ];
    if !wide.contains(&true) {
        return Ok(e);
    }
    let mut rest = extra;
    while rest.len() >= 4 {
        let (id, len) = (u16_at(rest, 0), usize::from(u16_at(rest, 2)));
        let data = rest
            .get(4..4 + len)
            .ok_or("an extra field runs past its header")?;
        if id == ZIP64_EXTRA_ID {
            let mut values = data.chunks_exact(8).map(|c| u64_at(c, 0));
            for (field, is_wide) in [&mut e.uncompressed, &mut e.compressed, &mut e.offset]
                .into_iter()
                .zip(wide)
            {
                if is_wide {
                    *field = values.next().ok_or("its ZIP64 extra field is too short")?;
                }
            }
            return Ok(e);
        }
        rest = &rest[4 + len..];
    }
    Err("a size or offset is marked ZIP64 but has no ZIP64 extra field".into())
}

/// The text of `path` in the zip `object`.
pub(crate) async fn read_entry<R: Ranges>(
    object: &mut R,
    path: &str,
    artifact: &str,
) -> Result<String, ArtifactError> {
    let wanted = path.trim_start_matches("./");
    let not_a_zip = |reason: String| ArtifactError::NotAZip {
        artifact: artifact.to_owned(),
        reason,
    };
    let unsupported = |reason: String| ArtifactError::Unsupported {
        path: wanted.to_owned(),
        artifact: artifact.to_owned(),
        reason,
    };
    let too_large = || ArtifactError::TooLarge {
        path: wanted.to_owned(),
        artifact: artifact.to_owned(),
    };

    let (directory, size) = locate_directory(object, artifact).await?;
    let object = &*object;
    let mut scan = DirectoryScan::new(wanted);
    object
        .read(directory.offset, directory.size, |piece| {
            scan.feed(piece).map_err(not_a_zip)
        })
        .await?;
    let (files, matches, found) = scan.finish().map_err(not_a_zip)?;
    let entry = match (matches, found) {
        (1, Some(entry)) => entry,
        (0, _) | (_, None) => {
            return Err(ArtifactError::NotFound {
                path: wanted.to_owned(),
                artifact: artifact.to_owned(),
                files,
            });
        }
        (count, Some(_)) => {
            return Err(ArtifactError::Ambiguous {
                path: wanted.to_owned(),
                artifact: artifact.to_owned(),
                count,
            });
        }
    };
    if entry.flags & 1 != 0 {
        return Err(unsupported("it is encrypted".into()));
    }
    if entry.method != STORED && entry.method != DEFLATED {
        return Err(unsupported(format!(
            "it is compressed with method {}; only stored and deflate entries are read",
            entry.method
        )));
    }
    if entry.uncompressed > MAX_BUILDSPEC_BYTES || entry.compressed > MAX_COMPRESSED_BYTES {
        return Err(too_large());
    }

    let local = read_vec(object, entry.offset, LOCAL_HEADER_LEN).await?;
    if u32_at(&local, 0) != LOCAL_SIG {
        return Err(not_a_zip(format!(
            "no local header for {wanted} at {}",
            entry.offset
        )));
    }
    let data_at = entry.offset
        + LOCAL_HEADER_LEN
        + u64::from(u16_at(&local, 26))
        + u64::from(u16_at(&local, 28));
    if data_at.saturating_add(entry.compressed) > size {
        return Err(not_a_zip(format!("the data of {wanted} runs past the end")));
    }
    let data = read_vec(object, data_at, entry.compressed).await?;
    let text = if entry.method == STORED {
        data
    } else {
        // The directory's size may lie (a zip bomb): never inflate past
        // the cap, whatever it says.
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(data.as_slice())
            .take(MAX_BUILDSPEC_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| not_a_zip(format!("the data of {wanted} does not inflate: {e}")))?;
        if out.len() as u64 > MAX_BUILDSPEC_BYTES {
            return Err(too_large());
        }
        out
    };
    if text.len() as u64 != entry.uncompressed {
        return Err(not_a_zip(format!(
            "{wanted} is {} bytes where the directory says {}",
            text.len(),
            entry.uncompressed
        )));
    }
    if crc32fast::hash(&text) != entry.crc {
        return Err(not_a_zip(format!("{wanted} fails its CRC-32 check")));
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// An object in memory, handed out in small pieces (so the directory
    /// scan meets headers cut anywhere), counting the bytes read of it.
    struct Memory {
        bytes: Vec<u8>,
        read: AtomicU64,
    }

    impl Memory {
        fn new(bytes: Vec<u8>) -> Self {
            Memory {
                bytes,
                read: AtomicU64::new(0),
            }
        }

        fn read_so_far(&self) -> u64 {
            self.read.load(Ordering::Relaxed)
        }
    }

    impl Ranges for Memory {
        async fn tail(&mut self, len: u64) -> Result<(u64, Vec<u8>), ArtifactError> {
            let size = self.bytes.len() as u64;
            let start = size - size.min(len);
            let tail = read_vec(&*self, start, size - start).await?;
            Ok((size, tail))
        }

        async fn read<F>(&self, start: u64, len: u64, mut sink: F) -> Result<(), ArtifactError>
        where
            F: FnMut(&[u8]) -> Result<(), ArtifactError> + Send,
        {
            let range = usize::try_from(start)
                .ok()
                .zip(usize::try_from(start + len).ok())
                .and_then(|(from, to)| self.bytes.get(from..to));
            let Some(bytes) = range else {
                return Err(ArtifactError::Download {
                    bucket: "memory".into(),
                    key: "zip".into(),
                    reason: format!("bytes {start}+{len} past the end"),
                });
            };
            self.read.fetch_add(len, Ordering::Relaxed);
            for piece in bytes.chunks(1000) {
                sink(piece)?;
            }
            Ok(())
        }
    }

    /// One file of a test zip.
    #[derive(Clone)]
    struct File {
        name: &'static str,
        data: Vec<u8>,
        method: u16,
        flags: u16,
        /// The uncompressed size the headers claim, if not the real one.
        claimed: Option<u64>,
    }

    fn file(name: &'static str, data: impl Into<Vec<u8>>) -> File {
        File {
            name,
            data: data.into(),
            method: DEFLATED,
            flags: 0,
            claimed: None,
        }
    }

    fn stored(name: &'static str, data: impl Into<Vec<u8>>) -> File {
        File {
            method: STORED,
            ..file(name, data)
        }
    }

    /// A zip as APPNOTE describes it, written here so the tests control
    /// every field; with `zip64`, sizes and offsets go in ZIP64 extra
    /// fields and the directory's place in a ZIP64 end record.
    fn zip(files: &[File], zip64: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut directory = Vec::new();
        for f in files {
            let data = if f.method == DEFLATED {
                let mut enc =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&f.data).expect("deflate");
                enc.finish().expect("deflate")
            } else {
                f.data.clone()
            };
            let crc = crc32fast::hash(&f.data);
            let size = f.claimed.unwrap_or(f.data.len() as u64);
            let offset = out.len() as u64;
            let narrow = |v: u64| if zip64 { 0xFFFF_FFFF } else { v as u32 };
            let mut extra = Vec::new();
            if zip64 {
                extra.extend_from_slice(&ZIP64_EXTRA_ID.to_le_bytes());
                extra.extend_from_slice(&24u16.to_le_bytes());
                for v in [size, data.len() as u64, offset] {
                    extra.extend_from_slice(&v.to_le_bytes());
                }
            }
            out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
            for v in [20u16, f.flags, f.method, 0, 0] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc, narrow(data.len() as u64), narrow(size)] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(f.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(&data);

            directory.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            for v in [45u16, 20, f.flags, f.method, 0, 0] {
                directory.extend_from_slice(&v.to_le_bytes());
            }
            for v in [crc, narrow(data.len() as u64), narrow(size)] {
                directory.extend_from_slice(&v.to_le_bytes());
            }
            for v in [f.name.len() as u16, extra.len() as u16, 0, 0, 0] {
                directory.extend_from_slice(&v.to_le_bytes());
            }
            directory.extend_from_slice(&0u32.to_le_bytes());
            directory.extend_from_slice(&narrow(offset).to_le_bytes());
            directory.extend_from_slice(f.name.as_bytes());
            directory.extend_from_slice(&extra);
        }
        let directory_at = out.len() as u64;
        out.extend_from_slice(&directory);
        let count = files.len() as u64;
        if zip64 {
            let record_at = out.len() as u64;
            out.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
            out.extend_from_slice(&(ZIP64_EOCD_LEN - 12).to_le_bytes());
            out.extend_from_slice(&45u16.to_le_bytes());
            out.extend_from_slice(&45u16.to_le_bytes());
            out.extend_from_slice(&[0u8; 8]);
            for v in [count, count, directory.len() as u64, directory_at] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&record_at.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        let (count, size, at) = if zip64 {
            (0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF)
        } else {
            (count as u16, directory.len() as u32, directory_at as u32)
        };
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    const BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n";

    async fn read(bytes: Vec<u8>, path: &str) -> Result<String, ArtifactError> {
        read_entry(&mut Memory::new(bytes), path, "SourceOutput").await
    }

    /// Bytes no compressor can shrink (xorshift64).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reads_a_deflated_or_stored_entry_by_its_path() {
        for zip64 in [false, true] {
            let bytes = zip(
                &[
                    stored("src/main.rs", "fn main() {}"),
                    file("ci/buildspec.yml", BUILDSPEC),
                    stored("buildspec.yml", "version: 0.2\n"),
                ],
                zip64,
            );
            let text = read(bytes.clone(), "./ci/buildspec.yml")
                .await
                .expect("readable");
            assert_eq!(text, BUILDSPEC, "zip64: {zip64}");
            let text = read(bytes, "buildspec.yml").await.expect("readable");
            assert_eq!(text, "version: 0.2\n", "zip64: {zip64}");
        }
    }

    /// The point of reading by range: what is read does not grow with the
    /// artifact.
    #[tokio::test(flavor = "current_thread")]
    async fn a_large_artifact_is_read_only_at_its_end_and_at_the_entry() {
        let files = [
            stored("a.bin", noise(2 << 20, 1)),
            stored("b.bin", noise(2 << 20, 2)),
            file("buildspec.yml", BUILDSPEC),
            stored("c.bin", noise(2 << 20, 3)),
            stored("d.bin", noise(2 << 20, 4)),
        ];
        let mut object = Memory::new(zip(&files, false));
        let text = read_entry(&mut object, "buildspec.yml", "SourceOutput")
            .await
            .expect("readable");
        assert_eq!(text, BUILDSPEC);
        assert!(object.bytes.len() > 8 << 20);
        // The tail, five directory headers, a local header, the entry.
        assert!(
            object.read_so_far() <= TAIL_BYTES + 1024,
            "read {} bytes",
            object.read_so_far()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_entry_names_the_path_and_counts_the_files() {
        let err = read(
            zip(&[stored("a", "x"), stored("b", "y")], false),
            "buildspec.yml",
        )
        .await
        .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "buildspec.yml not found in input artifact SourceOutput (2 files)"
        );
    }

    /// `unzip` lets the last of two same-named entries win: which buildspec
    /// the build would run is not for this action to guess.
    #[tokio::test(flavor = "current_thread")]
    async fn a_path_present_twice_is_refused() {
        let err = read(
            zip(
                &[stored("buildspec.yml", "a"), stored("buildspec.yml", "b")],
                false,
            ),
            "buildspec.yml",
        )
        .await
        .expect_err("ambiguous");
        assert!(
            matches!(err, ArtifactError::Ambiguous { count: 2, .. }),
            "{err}"
        );
    }

    /// A zip bomb: the directory claims 100 bytes, the data inflates to
    /// 8 MiB. Inflating stops at the cap.
    #[tokio::test(flavor = "current_thread")]
    async fn a_zip_bomb_is_not_inflated_past_the_cap() {
        let bomb = File {
            claimed: Some(100),
            ..file("buildspec.yml", vec![b'#'; 8 << 20])
        };
        let err = read(zip(&[bomb], false), "buildspec.yml")
            .await
            .expect_err("bomb");
        assert!(matches!(err, ArtifactError::TooLarge { .. }), "{err}");
    }

    /// An entry the directory says is over the cap is refused before its
    /// data is read: only the tail and the directory are.
    #[tokio::test(flavor = "current_thread")]
    async fn an_entry_over_the_cap_is_refused_unread() {
        let big = stored("buildspec.yml", noise(2 << 20, 5));
        let mut object = Memory::new(zip(&[big], false));
        let err = read_entry(&mut object, "buildspec.yml", "SourceOutput")
            .await
            .expect_err("too large");
        assert_eq!(
            err.to_string(),
            "buildspec.yml in input artifact SourceOutput is larger than 1048576 bytes"
        );
        assert_eq!(object.read_so_far(), TAIL_BYTES + 46 + 13);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_truncated_or_corrupt_zip_is_not_a_readable_zip() {
        async fn why(bytes: Vec<u8>) -> String {
            match read(bytes, "buildspec.yml").await {
                Err(ArtifactError::NotAZip { reason, .. }) => reason,
                other => panic!("{other:?}"),
            }
        }
        let good = zip(&[stored("buildspec.yml", BUILDSPEC)], false);
        let cut = why(good[..good.len() - 10].to_vec()).await;
        assert!(cut.contains("no end-of-central-directory record"), "{cut}");
        let tiny = why(b"PK".to_vec()).await;
        assert!(tiny.contains("only 2 bytes"), "{tiny}");
        let empty = why(Vec::new()).await;
        assert!(empty.contains("only 0 bytes"), "{empty}");
        let corrupt = |at: usize, byte: u8| {
            let mut bad = good.clone();
            bad[at] = byte;
            bad
        };
        let directory_at = good.len() - 22 - (46 + 13);
        let reason = why(corrupt(directory_at, b'X')).await;
        assert!(reason.contains("no header signature"), "{reason}");
        let reason = why(corrupt(30 + 13, b'X')).await;
        assert!(reason.contains("CRC-32"), "{reason}");
        let reason = why(corrupt(0, b'X')).await;
        assert!(reason.contains("no local header"), "{reason}");
        // The directory's offset, in the end record, past the end.
        let reason = why(corrupt(good.len() - 3, 0xFF)).await;
        assert!(reason.contains("runs past the end record"), "{reason}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn encrypted_or_unusually_compressed_entries_are_refused_with_the_reason() {
        let encrypted = File {
            flags: 1,
            ..stored("buildspec.yml", BUILDSPEC)
        };
        let err = read(zip(&[encrypted], false), "buildspec.yml")
            .await
            .expect_err("encrypted");
        assert!(
            err.to_string().ends_with("cannot be read: it is encrypted"),
            "{err}"
        );
        let bzip2 = File {
            method: 12,
            ..stored("buildspec.yml", BUILDSPEC)
        };
        let err = read(zip(&[bzip2], false), "buildspec.yml")
            .await
            .expect_err("bzip2");
        assert!(
            err.to_string().contains("compressed with method 12"),
            "{err}"
        );
    }

    /// Only the end record is read when it puts the directory over its cap.
    #[tokio::test(flavor = "current_thread")]
    async fn a_directory_over_its_cap_is_refused_unread() {
        let mut bytes = zip(&[], false);
        let at = bytes.len() - 10;
        let claimed = u32::try_from(MAX_DIRECTORY_BYTES + 1).expect("fits");
        bytes[at..at + 4].copy_from_slice(&claimed.to_le_bytes());
        let err = read(bytes, "buildspec.yml").await.expect_err("too large");
        assert!(
            matches!(err, ArtifactError::DirectoryTooLarge { bytes, .. } if bytes == MAX_DIRECTORY_BYTES + 1),
            "{err}"
        );
    }
}
