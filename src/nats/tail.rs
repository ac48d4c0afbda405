//! Reading the stream: following it ([`follow_stream`], `wirewatch nats-tail`) and
//! reading it whole ([`read_all`], for tests and tools).

use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use serde_json::Value;

use super::{classify, connect, context, error, Setup};
use crate::config::nats::NatsConfig;
use crate::sink::SinkError;

/// Where following starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Deliver {
    /// From the first message kept.
    #[default]
    All,
    /// Only messages stored from now on.
    New,
    /// The newest version of every article, then everything new.
    LastPerArticle,
}

/// One message read back from the stream.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// Stream sequence.
    pub seq: u64,
    /// Subject.
    pub subject: String,
    /// `Nats-Msg-Id`.
    pub msg_id: Option<String>,
    /// The record.
    pub record: Value,
}

fn nats_config(urls: &str) -> NatsConfig {
    NatsConfig {
        urls: urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        ..NatsConfig::default()
    }
}

async fn find_stream(
    js: &jetstream::Context,
    stream: Option<&str>,
    subject: &str,
) -> Result<jetstream::stream::Stream, Setup> {
    let name = match stream {
        Some(s) => s.to_owned(),
        None => js
            .stream_by_subject(subject)
            .await
            .map_err(|e| classify(&format!("stream for subject {subject}"), e))?,
    };
    js.get_stream(&name)
        .await
        .map_err(|e| classify(&format!("stream {name}"), e))
}

/// Follows `subject` (wildcards allowed; default in the CLI `articles.>`) on the
/// stream `stream` (default: the stream that holds the subject) through an ordered
/// consumer — ephemeral, no acknowledgements, recreated by the client after a gap or
/// a reconnection — and calls `on_record` with each record in stream order until it
/// returns `Break` or the connection is closed for good.
pub async fn follow_stream(
    urls: &str,
    stream: Option<&str>,
    subject: &str,
    deliver: Deliver,
    mut on_record: impl FnMut(StreamRecord) -> ControlFlow<()>,
) -> Result<(), SinkError> {
    let cfg = nats_config(urls);
    let js = context(connect(&cfg, "tail").await?, &cfg);
    let s = super::until_ok("finding the stream", || find_stream(&js, stream, subject)).await?;
    let deliver_policy = match deliver {
        Deliver::All => consumer::DeliverPolicy::All,
        Deliver::New => consumer::DeliverPolicy::New,
        Deliver::LastPerArticle => consumer::DeliverPolicy::LastPerSubject,
    };
    let c = s
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| error("ordered consumer", e))?;
    let mut messages = c
        .messages()
        .await
        .map_err(|e| error("ordered consumer", e))?;
    while let Some(m) = messages.next().await {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "reading the stream; the consumer resumes after the last message seen");
                continue;
            }
        };
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
        let record = match serde_json::from_slice::<Value>(&m.payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(seq, error = %e, "message is not JSON; skipped");
                continue;
            }
        };
        let msg_id = m
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned());
        let r = StreamRecord {
            seq,
            subject: m.subject.to_string(),
            msg_id,
            record,
        };
        if on_record(r).is_break() {
            break;
        }
    }
    Ok(())
}

/// Reads every message of `stream` in sequence order, by direct requests for each
/// sequence (deleted sequences are skipped).
pub async fn read_all(
    js: &jetstream::Context,
    stream: &str,
) -> Result<Vec<StreamRecord>, SinkError> {
    let target = format!("stream {stream}");
    let mut s = js.get_stream(stream).await.map_err(|e| error(&target, e))?;
    let info = s.info().await.map_err(|e| error(&target, e))?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let mut out = Vec::new();
    if info.state.messages == 0 {
        return Ok(out);
    }
    for seq in first..=last {
        match s.get_raw_message(seq).await {
            Ok(m) => {
                let record = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                out.push(StreamRecord {
                    seq,
                    subject: m.subject.to_string(),
                    msg_id: m
                        .headers
                        .get(async_nats::header::NATS_MESSAGE_ID)
                        .map(|v| v.as_str().to_owned()),
                    record,
                });
            }
            Err(e) if e.to_string().contains("no message found") => {}
            Err(e) => return Err(error(&target, e)),
        }
    }
    Ok(out)
}

/// A one-line summary of a record (until the shared terminal view is wired in).
pub fn summary_line(r: &StreamRecord) -> String {
    let v = &r.record;
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_owned();
    format!(
        "#{} {} rev {} {} {} {}",
        r.seq,
        s("article_id"),
        v["revision"].as_u64().unwrap_or(0),
        v["updated_at"]
            .as_str()
            .or(v["posted_at"].as_str())
            .unwrap_or("-"),
        s("dateline"),
        s("title")
    )
}

/// `wirewatch nats-tail`: prints each record as it arrives (`--json`: the raw JSON
/// line), stops after `limit` records when given, or after `idle` without a message.
pub fn cli(
    urls: &str,
    stream: Option<&str>,
    subject: &str,
    json: bool,
    deliver: Deliver,
    limit: Option<u64>,
    idle: Option<Duration>,
) -> ExitCode {
    // 512 blocking threads: tokio's default.
    let rt = match crate::runtime::runtime(1, 512) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        use std::io::Write;
        let mut n = 0u64;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let follow = follow_stream(urls, stream, subject, deliver, |r| {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let line = if json {
                r.record.to_string()
            } else {
                summary_line(&r)
            };
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                return ControlFlow::Break(());
            }
            let _ = tx.send(());
            n += 1;
            if limit.is_some_and(|l| n >= l) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let watchdog = async {
            match idle {
                Some(idle) => {
                    while let Ok(Some(())) = tokio::time::timeout(idle, rx.recv()).await {}
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = follow => match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("wirewatch: {e}");
                    ExitCode::from(1)
                }
            },
            () = watchdog => ExitCode::SUCCESS,
        }
    })
}
