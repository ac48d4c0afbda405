//! Criterion benchmarks of the parse stage on the seed article.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wirewatch::parse::{self, ParseOptions, SourceFile};

fn seed() -> SourceFile {
    SourceFile {
        path: "tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt".into(),
        bytes: include_bytes!("../tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt").to_vec(),
        modified: None,
    }
}

fn bench_parse(c: &mut Criterion) {
    let opts = ParseOptions::new("America/Toronto").expect("bundled tz");
    let file = seed();
    let reference = "2022-10-03T02:55:00Z".parse().ok();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seed", |b| {
        b.iter(|| parse::parse(black_box(&file), reference, &opts))
    });
    g.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
