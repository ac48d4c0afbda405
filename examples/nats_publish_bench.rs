//! Records/s published with acknowledgements to a JetStream stream, through the
//! daemon's own sink (and, with `--ledger`, the cluster-wide dedupe ledger).
//!
//! ```sh
//! scripts/nats-cluster.sh start
//! cargo run --release --example nats_publish_bench -- \
//!     --urls nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224 \
//!     --records 20000 --batch 256 [--ledger]
//! ```
//!
//! Every record is the seed article's record (≈ 6 KB of JSON) under a distinct
//! `article_id`. The stream (R3, file storage) and bucket are created for the run
//! and deleted after it. Batches go through `Sink::append` exactly as the committer
//! calls it: all publishes sent, all acks awaited, before the next batch.

use std::time::Instant;

use wirewatch::config::nats::NatsConfig;
use wirewatch::dedupe::Ledger;
use wirewatch::sink::Sink;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let urls = arg(&args, "--urls")
        .or_else(|| std::env::var("WIREWATCH_NATS_URLS").ok())
        .unwrap_or_else(|| "nats://127.0.0.1:14222".into());
    let records: usize = arg(&args, "--records").map_or(20_000, |v| v.parse().unwrap());
    let batch: usize = arg(&args, "--batch").map_or(256, |v| v.parse().unwrap());
    let replicas: usize = arg(&args, "--replicas").map_or(3, |v| v.parse().unwrap());
    let with_ledger = args.iter().any(|a| a == "--ledger");

    let opts = wirewatch::parse::ParseOptions::new("America/Toronto").unwrap();
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed/000_fbc3d1cb8b5383ef.txt");
    let file = wirewatch::parse::read_file(&seed, &opts.limits).unwrap();
    let reference: jiff::Timestamp = "2022-10-03T02:55:00Z".parse().unwrap();
    let base = wirewatch::parse::parse(&file, Some(reference), &opts).unwrap();

    let tag = std::process::id();
    let cfg = NatsConfig {
        urls: urls.split(',').map(str::to_owned).collect(),
        stream: format!("BENCH_{tag}"),
        subject_prefix: format!("bench{tag}"),
        replicas,
        ..NatsConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (elapsed, bytes) = rt.block_on(async {
        let client = wirewatch::nats::connect(&cfg, "bench").await.unwrap();
        let js = wirewatch::nats::context(client, &cfg);
        let stream =
            wirewatch::nats::until_ok("stream", || wirewatch::nats::ensure_stream(&js, &cfg))
                .await
                .unwrap();
        let dcfg = wirewatch::nats::DedupeConfig {
            kv_bucket: format!("bench-{tag}"),
            kv_replicas: replicas,
            ..Default::default()
        };
        let shared = if with_ledger {
            let kv = wirewatch::nats::until_ok("bucket", || {
                wirewatch::nats::ledger::ensure_bucket(&js, &dcfg, 1)
            })
            .await
            .unwrap();
            Some(std::sync::Arc::new(wirewatch::nats::ledger::Claims::new(
                kv,
            )))
        } else {
            None
        };
        let mut ledger = shared.clone().map(wirewatch::nats::ledger::KvLedger::new);
        let mut sink = wirewatch::nats::sink::JetStreamSink::new(js.clone(), stream, &cfg, shared);
        let result = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let mut bytes = 0usize;
            let mut i = 0;
            while i < records {
                let mut out = Vec::with_capacity(batch * 7000);
                for _ in 0..batch.min(records - i) {
                    let mut r = base.clone();
                    r.article_id = format!("{i:016x}");
                    if let Some(l) = ledger.as_mut() {
                        let (v, _) = l.claim(&r, 0).unwrap();
                        assert!(matches!(v, wirewatch::dedupe::Verdict::Emit { .. }));
                    }
                    r.revision = Some(1);
                    r.supersedes = Some(None);
                    // As the committer does: the line carries its emission time.
                    r.emitted_at = Some(wirewatch::record::format_utc(jiff::Timestamp::now()));
                    serde_json::to_writer(&mut out, &r).unwrap();
                    out.push(b'\n');
                    i += 1;
                }
                bytes += out.len();
                sink.append(&out).unwrap();
            }
            (start.elapsed(), bytes)
        })
        .await
        .unwrap();
        let _ = js.delete_stream(&cfg.stream).await;
        if with_ledger {
            let _ = js.delete_key_value(&dcfg.kv_bucket).await;
        }
        result
    });
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "{records} records ({:.1} MB) in batches of {batch} to a {replicas}-replica stream{}: {:.2} s, {:.0} records/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        if with_ledger { " with the KV ledger" } else { "" },
        secs,
        records as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}
