use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ranged::{Ranges, read_vec};
use super::zip::*;
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
