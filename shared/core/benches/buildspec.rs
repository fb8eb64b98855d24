//! Validation cost beside plain YAML parsing of the same bytes.
//!
//! Validating every corpus buildspec against `yaml_rust2::YamlLoader`
//! loading them into an untyped value: the validator's own parse keeps
//! positions and runs the grammar walk, and should stay within 2x of it.
//! Throughput is per byte of buildspec text.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn corpus() -> Vec<String> {
    let root = std::env::var_os("GANTRY_CORPUS").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/corpus"
            ))
        },
        PathBuf::from,
    );
    let dir = root.join("buildspecs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus not found at {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    let bytes: usize = files.iter().map(String::len).sum();
    let mut group = c.benchmark_group(format!("corpus ({} files, {bytes} bytes)", files.len()));
    group.throughput(Throughput::Bytes(u64::try_from(bytes).unwrap_or(u64::MAX)));
    group.bench_function("yaml_rust2 load_from_str", |b| {
        b.iter(|| {
            for text in &files {
                let _ = black_box(yaml_rust2::YamlLoader::load_from_str(black_box(text)));
            }
        });
    });
    group.bench_function("buildspec::validate", |b| {
        b.iter(|| {
            for text in &files {
                black_box(gantry_core::buildspec::validate(black_box(text)));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
