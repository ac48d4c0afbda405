//! Scaling out on NATS JetStream: a replicated sink, a cluster-wide dedupe ledger and
//! a stream follower.
//!
//! * [`sink::JetStreamSink`] publishes every record to the stream `nats.stream` on
//!   the subject `<subject_prefix>.<dateline-slug>.<article_id>` with the header
//!   `Nats-Msg-Id: <article_id>:<stamp>`; `append` returns once every record is
//!   acknowledged (stored on a majority of the replicas).
//! * [`ledger::KvLedger`] keeps the dedupe decisions in a replicated key-value
//!   bucket, keyed by `article_id`, changed only by compare-and-set on the entry's
//!   revision, so that daemons on several hosts agree on what is new.
//! * [`rejects::RejectsSink`] publishes every reject line to `nats.rejects_subject`
//!   before it reaches the local rejects file.
//! * [`secure`] turns the authentication and TLS keys into client options, and
//!   tells a refused first connection from a cluster not answering yet.
//! * [`tail`] follows the stream (`wirewatch tail --nats`) and reads it back whole.
//! * [`health`] tells `/health` about the connection and failed requests.
//!
//! The protocol is described in `docs/scaling-out.md`.

pub mod health;
pub mod ledger;
pub mod rejects;
pub mod secure;
pub mod sink;
pub mod tail;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::config::Config;
use crate::dedupe::Ledger;
use crate::health::Health;
use crate::record::Stamp;
use crate::sink::{Sink, SinkError};

pub use crate::config::nats::{DedupeConfig, DedupeStore, NatsConfig, SinkConfig, SinkKind};
pub use health::Reporter;

/// An error talking to the cluster, as a [`SinkError`] naming what was addressed.
pub fn error(target: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SinkError {
    SinkError::Remote {
        target: target.to_owned(),
        source: e.into(),
    }
}

/// The subject token for a dateline: folded to lowercase ASCII, every run of other
/// characters one `-`, trimmed; `none` when there is no dateline (or nothing left).
pub fn dateline_slug(dateline: Option<&str>) -> String {
    let folded = deunicode::deunicode(dateline.unwrap_or("")).to_ascii_lowercase();
    let mut slug = String::with_capacity(folded.len());
    for c in folded.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        "none".into()
    } else {
        slug.into()
    }
}

/// The subject a record is published on.
pub fn subject(prefix: &str, dateline: Option<&str>, article_id: &str) -> String {
    format!("{prefix}.{}.{article_id}", dateline_slug(dateline))
}

/// `Nats-Msg-Id` of a version: `<article_id>:<stamp>` (`none` for no stamp).
pub fn msg_id(article_id: &str, stamp: Option<&Stamp>) -> String {
    match stamp {
        Some(s) => format!("{article_id}:{s}"),
        None => format!("{article_id}:none"),
    }
}

/// The stamp written in a `Nats-Msg-Id` (outer `None`: not one of ours).
pub fn stamp_of_msg_id(id: &str) -> Option<Option<Stamp>> {
    let (_, s) = id.split_once(':')?;
    if s == "none" {
        Some(None)
    } else {
        Stamp::parse(s).map(Some)
    }
}

/// Connects to the cluster. A first attempt that the servers refuse (bad
/// credentials, a TLS failure: see [`secure::refusal`]) is an error that says which
/// keys to check. When no server answers yet it returns at once all the same: the
/// client keeps reconnecting with backoff (50 ms doubling to 2 s) for ever, and
/// every request fails with a time-out meanwhile.
pub async fn connect(cfg: &NatsConfig, role: &str) -> Result<async_nats::Client, SinkError> {
    connect_reporting(cfg, role, Reporter::default()).await
}

/// [`connect`], telling `reporter` when the connection is lost or made.
pub async fn connect_reporting(
    cfg: &NatsConfig,
    role: &str,
    reporter: Reporter,
) -> Result<async_nats::Client, SinkError> {
    let target = cfg.urls.join(",");
    match options(cfg, role, reporter.clone())
        .await?
        .connect(cfg.urls.as_slice())
        .await
    {
        Ok(client) => return Ok(client),
        Err(e) => {
            if let Some(advice) = secure::refusal(cfg, &e) {
                return Err(error(&target, advice));
            }
            tracing::debug!(nats = %target, error = %e, "no NATS server answered yet; retrying in the background");
        }
    }
    options(cfg, role, reporter)
        .await?
        .retry_on_initial_connect()
        .connect(cfg.urls.as_slice())
        .await
        .map_err(|e| error(&target, e))
}

/// The client options of a connection: [`secure::options`], the name, time-outs,
/// reconnect backoff and the event log.
async fn options(
    cfg: &NatsConfig,
    role: &str,
    reporter: Reporter,
) -> Result<async_nats::ConnectOptions, SinkError> {
    let target = cfg.urls.join(",");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let opts = secure::options(cfg).await?;
    Ok(opts
        .name(format!("wirewatch {role} {host} pid {}", std::process::id()))
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(Duration::from_millis(cfg.request_timeout_ms)))
        .reconnect_delay_callback(|attempts| {
            let exp = u32::try_from(attempts.min(6)).unwrap_or(6);
            Duration::from_millis(50 * 2u64.pow(exp)).min(Duration::from_secs(2))
        })
        .event_callback(move |event| {
            let target = target.clone();
            reporter.event(&event);
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!(nats = %target, "connected to the NATS cluster")
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(nats = %target, "disconnected from the NATS cluster; reconnecting")
                    }
                    async_nats::Event::ServerError(e) => {
                        tracing::warn!(nats = %target, error = %e, "the NATS server reports an error")
                    }
                    other => tracing::debug!(nats = %target, event = %other, "NATS event"),
                }
            }
        }))
}

/// A JetStream context with the configured request / ack time-out.
pub fn context(client: async_nats::Client, cfg: &NatsConfig) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(cfg.request_timeout_ms))
        .build(client)
}

/// The stream configuration wirewatch creates.
pub fn stream_config(cfg: &NatsConfig) -> stream::Config {
    stream::Config {
        name: cfg.stream.clone(),
        description: Some("wirewatch article records, one message per version".into()),
        subjects: vec![format!("{}.>", cfg.subject_prefix)],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        max_age: Duration::from_secs(u64::from(cfg.max_age_days) * 86_400),
        max_messages_per_subject: if cfg.max_versions_per_article == 0 {
            -1
        } else {
            cfg.max_versions_per_article
        },
        duplicate_window: Duration::from_secs(cfg.duplicate_window_s),
        allow_direct: true,
        ..Default::default()
    }
}

/// A start-up step's failure: worth retrying (no answer, no leader yet) or not (the
/// cluster refused: bad settings, overlapping subjects, …).
#[derive(Debug)]
pub enum Setup {
    /// Retry with backoff.
    Retry(SinkError),
    /// Stop with this error.
    Fatal(SinkError),
}

/// The JetStream API answer (status and error code) behind `e`: the error itself,
/// the `JetStream` kind of the stream errors, or the source of a bucket error,
/// looked for down the source chain.
fn api_error(e: &(dyn std::error::Error + 'static)) -> Option<jetstream::Error> {
    use jetstream::context::{
        CreateStreamError, CreateStreamErrorKind, GetStreamByNameError, GetStreamByNameErrorKind,
        GetStreamError, GetStreamErrorKind,
    };
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(j) = err.downcast_ref::<jetstream::Error>() {
            return Some(j.clone());
        }
        let kind = if let Some(g) = err.downcast_ref::<GetStreamError>() {
            match g.kind() {
                GetStreamErrorKind::JetStream(j) => Some(j),
                _ => None,
            }
        } else if let Some(c) = err.downcast_ref::<CreateStreamError>() {
            match c.kind() {
                CreateStreamErrorKind::JetStream(j) => Some(j),
                _ => None,
            }
        } else if let Some(b) = err.downcast_ref::<GetStreamByNameError>() {
            match b.kind() {
                GetStreamByNameErrorKind::JetStream(j) => Some(j),
                _ => None,
            }
        } else {
            None
        };
        if kind.is_some() {
            return kind;
        }
        cur = err.source();
    }
    None
}

/// True when the JetStream answer behind `e` is "stream not found".
fn stream_not_found(e: &(dyn std::error::Error + 'static)) -> bool {
    api_error(e).is_some_and(|j| j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Classifies a JetStream API error: a 4xx answer (other than 404 and 408) is the
/// cluster saying no, and stops; anything else is retried.
fn classify(target: &str, e: impl std::error::Error + Send + Sync + 'static) -> Setup {
    let refused = api_error(&e).is_some_and(|j| {
        let c = j.code();
        (400..500).contains(&c) && c != 404 && c != 408
    });
    if refused {
        Setup::Fatal(error(target, e))
    } else {
        Setup::Retry(error(target, e))
    }
}

/// Gets the stream, creating it when missing. An existing stream is used as it is;
/// settings that differ from the config are logged, not changed.
pub async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &NatsConfig,
) -> Result<stream::Stream, Setup> {
    let want = stream_config(cfg);
    let target = format!("stream {}", cfg.stream);
    match js.get_stream(&cfg.stream).await {
        Ok(mut s) => {
            let info = s
                .info()
                .await
                .map_err(|e| Setup::Retry(error(&target, e)))?;
            let have = &info.config;
            let ours = format!("{}.", cfg.subject_prefix);
            let covered = have
                .subjects
                .iter()
                .any(|x| x == ">" || x.strip_suffix('>').is_some_and(|p| ours.starts_with(p)));
            if !covered {
                return Err(Setup::Fatal(error(
                    &target,
                    format!(
                        "the existing stream holds subjects {:?}, not {}>: records would go nowhere (use another nats.stream or nats.subject_prefix)",
                        have.subjects, ours
                    ),
                )));
            }
            if have.num_replicas != want.num_replicas
                || have.duplicate_window != want.duplicate_window
                || have.max_age != want.max_age
            {
                tracing::warn!(
                    stream = %cfg.stream,
                    replicas = have.num_replicas,
                    duplicate_window_s = have.duplicate_window.as_secs(),
                    max_age_s = have.max_age.as_secs(),
                    subjects = ?have.subjects,
                    "the existing stream's settings differ from [nats]; using it as it is"
                );
            }
            Ok(s)
        }
        Err(e) if stream_not_found(&e) => {
            tracing::info!(stream = %want.name, replicas = want.num_replicas, subjects = ?want.subjects, "creating the stream");
            js.get_or_create_stream(want)
                .await
                .map_err(|e| classify(&target, e))
        }
        Err(e) => Err(classify(&target, e)),
    }
}

/// Retries `f` with backoff (100 ms doubling to 5 s) while it fails with
/// [`Setup::Retry`], logging each failure. For start-up steps that must wait for
/// the cluster.
pub async fn until_ok<T, F, Fut>(what: &str, f: F) -> Result<T, SinkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Setup>>,
{
    until_ok_reporting(what, &Reporter::default(), f).await
}

/// [`until_ok`], telling `reporter` of each failure and of the success.
pub async fn until_ok_reporting<T, F, Fut>(
    what: &str,
    reporter: &Reporter,
    mut f: F,
) -> Result<T, SinkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Setup>>,
{
    let mut backoff =
        crate::retry::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        match f().await {
            Ok(v) => {
                reporter.succeeded();
                return Ok(v);
            }
            Err(Setup::Fatal(e)) => return Err(e),
            Err(Setup::Retry(e)) => {
                reporter.failed(what, &e);
                let wait = backoff.wait();
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "{what} failed; the NATS cluster may be unreachable");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// What [`open`] makes: the records sink, the cluster-wide ledger (with
/// `[dedupe] store = "nats"`) and the publisher of reject lines.
pub struct Opened {
    /// Publishes records to the stream.
    pub records: Box<dyn Sink>,
    /// The cluster-wide dedupe ledger, when configured.
    pub ledger: Option<Box<dyn Ledger>>,
    /// Wraps the local rejects file so that its lines reach the cluster too.
    pub rejects: RejectsPublisher,
}

/// The cluster side of the rejects file, ready to wrap it ([`RejectsPublisher::wrap`]).
pub struct RejectsPublisher {
    js: jetstream::Context,
    cfg: NatsConfig,
    reporter: Reporter,
}

impl RejectsPublisher {
    /// The rejects file `file`, its lines also published ([`rejects::RejectsSink`]).
    pub fn wrap(self, file: Box<dyn Sink>) -> Box<dyn Sink> {
        Box::new(rejects::RejectsSink::new(
            self.js,
            &self.cfg,
            file,
            self.reporter,
        ))
    }
}

/// Opens the NATS side of a daemon: the records sink, the rejects stream and, when
/// `[dedupe] store = "nats"`, the cluster-wide ledger. Waits (retrying) until the
/// cluster answers; `health` says meanwhile that the daemon is connecting, and later
/// hears of the connection and of failed requests ([`health`]).
pub async fn open(cfg: &Config, health: Arc<Health>) -> Result<Opened, SinkError> {
    open_measured(cfg, health, None).await
}

/// [`open`], setting and counting the NATS sink's `metrics`.
pub(crate) async fn open_measured(
    cfg: &Config,
    health: Arc<Health>,
    metrics: Option<crate::metrics::NatsMetrics>,
) -> Result<Opened, SinkError> {
    let n = &cfg.nats;
    let reporter = Reporter::new(health, n).with_metrics(metrics);
    reporter.starting(Some(format!("connecting to NATS at {}", reporter.urls())));
    let client = connect_reporting(n, "daemon", reporter.clone()).await?;
    let js = context(client, n);
    let stream = until_ok_reporting("creating or reading the stream", &reporter, || {
        ensure_stream(&js, n)
    })
    .await?;
    until_ok_reporting("creating or reading the rejects stream", &reporter, || {
        rejects::ensure_stream(&js, n)
    })
    .await?;
    // The stream answered: connected (the client's events keep the gauge from now).
    reporter
        .set_connected(js.client().connection_state() == async_nats::connection::State::Connected);
    let max_payload = js.client().server_info().max_payload;
    if max_payload > 0 && (max_payload as u64) < cfg.parse.max_bytes {
        tracing::warn!(
            max_payload,
            parse_max_bytes = cfg.parse.max_bytes,
            "the server's max_payload is below parse.max_bytes: a record that large cannot be published (raise max_payload on the servers)"
        );
    }
    let (ledger, shared) = if cfg.dedupe.store == DedupeStore::Nats {
        let kv = until_ok_reporting("creating or reading the dedupe bucket", &reporter, || {
            ledger::ensure_bucket(&js, &cfg.dedupe, cfg.state.expire_days)
        })
        .await?;
        let shared = Arc::new(ledger::Claims::new(kv).with_reporter(reporter.clone()));
        let l: Box<dyn Ledger> = Box::new(ledger::KvLedger::new(shared.clone()));
        (Some(l), Some(shared))
    } else {
        (None, None)
    };
    let sink =
        sink::JetStreamSink::new(js.clone(), stream, n, shared).with_reporter(reporter.clone());
    reporter.starting(None);
    Ok(Opened {
        records: Box::new(sink),
        ledger,
        rejects: RejectsPublisher {
            js,
            cfg: n.clone(),
            reporter,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_subjects() {
        assert_eq!(dateline_slug(Some("Washington")), "washington");
        assert_eq!(dateline_slug(Some("Trois-Rivières")), "trois-rivieres");
        assert_eq!(dateline_slug(Some("St. John's, N.L.")), "st-john-s-n-l");
        assert_eq!(dateline_slug(Some("  ")), "none");
        assert_eq!(dateline_slug(None), "none");
        assert_eq!(dateline_slug(Some("Québec/Ottawa >*")), "quebec-ottawa");
        assert_eq!(
            subject("articles", Some("New York"), "00ff"),
            "articles.new-york.00ff"
        );
    }

    #[test]
    fn msg_ids_round_trip() {
        let s = Stamp::parse("2022-10-02T22:53:00-04:00");
        let id = msg_id("1839577d31e01d1b", s.as_ref());
        assert_eq!(id, "1839577d31e01d1b:2022-10-02T22:53:00-04:00");
        assert_eq!(stamp_of_msg_id(&id), Some(s));
        assert_eq!(stamp_of_msg_id("abc:none"), Some(None));
        assert_eq!(stamp_of_msg_id("abc"), None);
    }
}
