//! Criterion benchmarks of the per-record work after extraction: the dedupe verdict,
//! the `changes` diff (snapshot + diff), and record serialization; plus the whole
//! per-article CPU path with and without the diff, to show what the diff adds.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wirewatch::dedupe::{judge, ArticleState};
use wirewatch::diff::{self, Snapshot};
use wirewatch::parse::{self, ParseOptions, SourceFile};
use wirewatch::record::Record;

fn file(name: &str, bytes: &[u8]) -> SourceFile {
    SourceFile {
        path: name.into(),
        bytes: bytes.to_vec(),
        modified: None,
    }
}

fn record(f: &SourceFile, opts: &ParseOptions) -> Record {
    let mut r = parse::parse(f, "2022-10-04T21:46:00Z".parse().ok(), opts).expect("parses");
    wirewatch::pipeline::enrich(&mut r);
    r
}

fn bench(c: &mut Criterion) {
    let opts = ParseOptions::new("America/Toronto").expect("bundled tz");
    let first = file(
        "007.txt",
        include_bytes!("../tests/fixtures/dev/007_12a23dc6f6c396f7.txt"),
    );
    let update = file(
        "008.txt",
        include_bytes!("../tests/fixtures/dev/008_fccd1593fe3b7f7e.txt"),
    );
    let old = record(&first, &opts);
    let new = record(&update, &opts);
    let prev_snapshot = Snapshot::of(&old);
    let prev_state = ArticleState::of(&old, 1, 0);

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    g.bench_function("dedupe-verdict", |b| {
        b.iter(|| judge(black_box(Some(&prev_state)), black_box(new.version_stamp())))
    });
    g.bench_function("snapshot+diff", |b| {
        b.iter(|| {
            // As the committer does: the snapshot is built once, diffed, and kept.
            let snap = Snapshot::of(black_box(&new));
            let changes = diff::changes_with(black_box(&prev_snapshot), &snap, &new);
            (snap, changes)
        })
    });
    g.bench_function("serialize-record", |b| {
        b.iter(|| serde_json::to_vec(black_box(&new)).expect("serializes"))
    });
    g.bench_function("article/parse+extract+serialize", |b| {
        b.iter(|| {
            let r = record(black_box(&update), &opts);
            serde_json::to_vec(&r).expect("serializes")
        })
    });
    g.bench_function("article/parse+extract+diff+serialize", |b| {
        b.iter(|| {
            // As the committer does: one snapshot of the new version, kept for the next
            // revision and used for this one's diff.
            let mut r = record(black_box(&update), &opts);
            let snap = Snapshot::of(&r);
            r.changes = Some(Some(diff::changes_with(&prev_snapshot, &snap, &r)));
            serde_json::to_vec(&r).expect("serializes")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
