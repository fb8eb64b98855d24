//! gantry.yaml's parse beside plain YAML parsing of the same bytes, for a
//! configuration of many repositories: what every function pays on its
//! first invocation and at each refresh of the configuration. Each entry's
//! name is a case-insensitive glob, so each is a pattern to compile; the
//! lookup of the last entry's repository and a push's match against its
//! lists (compiled on their first use) follow the parse.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gantry_core::config::Config;

/// `entries` repositories, each with its own branch and path rules, as a
/// team's monorepo-less organisation would list them.
fn config(entries: usize) -> String {
    let mut text = String::from(
        "version: 1\ndefaults:\n  paths-ignore: [\"docs/**\", \"*.md\"]\nrepositories:\n",
    );
    for i in 0..entries {
        let _ = write!(
            text,
            "  - name: octo-org/service-{i:02}\n    project: service-{i:02}\n    push:\n      branches: [main, \"release/*\"]\n    paths: [\"src/**\", \"Cargo.*\"]\n"
        );
    }
    text
}

fn bench(c: &mut Criterion) {
    for entries in [1usize, 20] {
        let text = config(entries);
        let last = format!("octo-org/service-{:02}", entries - 1);
        let mut group = c.benchmark_group("gantry.yaml");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("yaml_rust2 load_from_str", entries),
            &text,
            |b, text| b.iter(|| black_box(yaml_rust2::YamlLoader::load_from_str(black_box(text)))),
        );
        group.bench_with_input(
            BenchmarkId::new("Config::parse + repository", entries),
            &text,
            |b, text| {
                b.iter(|| {
                    let (config, _) =
                        Config::parse(black_box(text)).expect("a valid configuration");
                    // A push's decision: the entry's branch, path and
                    // ignored-path lists, each compiled on its first use.
                    black_box(config.repository(&last).map(|r| {
                        (
                            r.push.branches.as_ref().map(|b| b.is_match("main")),
                            r.paths.as_ref().map(|p| p.is_match("src/lib.rs")),
                            r.paths_ignore.is_match("src/lib.rs"),
                        )
                    }))
                })
            },
        );
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
