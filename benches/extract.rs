//! Criterion benchmarks of the extract stage on the seed article: parse + extract (the
//! throughput figure: records per second on one core), extract alone, and extract
//! without the YAKE key-phrase pass.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wirewatch::extract::{self, ExtractOptions};
use wirewatch::parse::{self, ParseOptions, SourceFile};

fn seed() -> SourceFile {
    SourceFile {
        path: "tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt".into(),
        bytes: include_bytes!("../tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt").to_vec(),
        modified: None,
    }
}

fn bench_extract(c: &mut Criterion) {
    let opts = ParseOptions::new("America/Toronto").expect("bundled tz");
    let file = seed();
    let reference = "2022-10-03T02:55:00Z".parse().ok();
    let record = parse::parse(&file, reference, &opts).expect("seed parses");
    let full = ExtractOptions::default();
    let no_kw = ExtractOptions {
        keywords: false,
        ..ExtractOptions::default()
    };
    // Load the gazetteer outside the timed loops.
    let mut warm = record.clone();
    extract::extract(&mut warm);

    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse+extract/seed", |b| {
        b.iter(|| {
            let mut r = parse::parse(black_box(&file), reference, &opts).expect("parse");
            extract::extract_with(&mut r, &full);
            r
        })
    });
    g.bench_function("parse+extract-no-keywords/seed", |b| {
        b.iter(|| {
            let mut r = parse::parse(black_box(&file), reference, &opts).expect("parse");
            extract::extract_with(&mut r, &no_kw);
            r
        })
    });
    g.bench_function("extract/seed", |b| {
        b.iter_batched(
            || record.clone(),
            |mut r| {
                extract::extract_with(&mut r, &full);
                r
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("extract-no-keywords/seed", |b| {
        b.iter_batched(
            || record.clone(),
            |mut r| {
                extract::extract_with(&mut r, &no_kw);
                r
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_extract);
criterion_main!(benches);
