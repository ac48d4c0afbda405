//! Reading the stream: its records in order ([`follow_stream`], behind
//! `wirewatch tail --nats`) and all of it by sequence ([`read_all`], for tests and
//! tools).

use std::ops::ControlFlow;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use serde_json::Value;

use super::{classify, connect, context, error, Setup};
use crate::config::nats::NatsConfig;
use crate::sink::SinkError;

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

/// `base` (its security keys, time-outs) with the servers `urls` (comma-separated).
fn nats_config(base: &NatsConfig, urls: &str) -> NatsConfig {
    NatsConfig {
        urls: urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        ..base.clone()
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

/// Connects as `base` says (its authentication and TLS keys) to the servers `urls`,
/// and reads `subject` (wildcards allowed; default in the CLI `articles.>`) on the
/// stream `stream` (default: the stream that holds the subject) from its first
/// message, through an ordered consumer — ephemeral, no acknowledgements, recreated
/// by the client after a gap or a reconnection — and calls `on_record` with each
/// record in stream order. Without `follow` it returns once it has caught up with
/// what the stream held when the consumer was made (at once when that is nothing);
/// with `follow` it goes on until `on_record` returns `Break` or the connection is
/// closed for good.
pub async fn follow_stream(
    base: &NatsConfig,
    urls: &str,
    stream: Option<&str>,
    subject: &str,
    follow: bool,
    mut on_record: impl FnMut(StreamRecord) -> ControlFlow<()>,
) -> Result<(), SinkError> {
    let cfg = nats_config(base, urls);
    let js = context(connect(&cfg, "tail").await?, &cfg);
    let s = super::until_ok("finding the stream", || find_stream(&js, stream, subject)).await?;
    let mut c = s
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| error("ordered consumer", e))?;
    if !follow {
        let info = c.info().await.map_err(|e| error("ordered consumer", e))?;
        if info.num_pending == 0 {
            return Ok(());
        }
    }
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
        let (seq, pending) = m
            .info()
            .map_or((0, u64::MAX), |i| (i.stream_sequence, i.pending));
        let caught_up = !follow && pending == 0;
        let record = match serde_json::from_slice::<Value>(&m.payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(seq, error = %e, "message is not JSON; skipped");
                if caught_up {
                    break;
                }
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
        if on_record(r).is_break() || caught_up {
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
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(error(&target, e)),
        }
    }
    Ok(out)
}
