//! The zip format, as far as finding one entry needs it: the end records,
//! the central directory scanned as it streams in, the entry's local
//! header and its data, inflated never past the cap and checked.

use std::io::Read;

use super::ranged::{Ranges, read_vec};
use super::{ArtifactError, MAX_BUILDSPEC_BYTES, MAX_DIRECTORY_BYTES};

/// Compressed data a buildspec of [`MAX_BUILDSPEC_BYTES`] can take: deflate
/// adds at most 5 bytes per 65,535 of stored block (RFC 1951, 3.2.4), so
/// 64 KiB of slack is far more than any encoder needs.
const MAX_COMPRESSED_BYTES: u64 = MAX_BUILDSPEC_BYTES + 64 * 1024;

/// The end-of-central-directory record: 22 bytes and a comment.
const EOCD_LEN: u64 = 22;
const MAX_COMMENT_LEN: u64 = 0xFFFF;
const ZIP64_LOCATOR_LEN: u64 = 20;
/// The ZIP64 end record without its extensible data.
pub(super) const ZIP64_EOCD_LEN: u64 = 56;
/// What the first read takes from the end: the longest end record, and the
/// ZIP64 locator and record right before it.
pub const TAIL_BYTES: u64 = EOCD_LEN + MAX_COMMENT_LEN + ZIP64_LOCATOR_LEN + ZIP64_EOCD_LEN;
const CENTRAL_HEADER_LEN: usize = 46;
const LOCAL_HEADER_LEN: u64 = 30;

pub(super) const EOCD_SIG: u32 = 0x0605_4b50;
pub(super) const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
pub(super) const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
pub(super) const CENTRAL_SIG: u32 = 0x0201_4b50;
pub(super) const LOCAL_SIG: u32 = 0x0403_4b50;
pub(super) const ZIP64_EXTRA_ID: u16 = 0x0001;

pub(super) const STORED: u16 = 0;
pub(super) const DEFLATED: u16 = 8;

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
