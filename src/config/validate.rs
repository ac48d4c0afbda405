//! Validation of a loaded [`Config`]: every value's domain, with errors that name
//! the key at fault and say what is accepted.

use super::*;

/// Checks `log.level`: a comma-separated list of `LEVEL` or `target=LEVEL`, each
/// level one of [`LOG_LEVELS`]. A bare word that is not a level (`warning`) is
/// refused: tracing would take it as a target name and silence every other line.
pub fn check_log_level(spec: &str) -> Result<(), String> {
    let levels = LOG_LEVELS.join(", ");
    if spec.trim().is_empty() {
        return Err(format!("is empty: give one of {levels}"));
    }
    for directive in spec.split(',').map(str::trim) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if !LOG_LEVELS
            .iter()
            .any(|l| l.eq_ignore_ascii_case(level.trim()))
        {
            return Err(format!(
                "{directive:?} is not a level: use one of {levels}, or target=level such as \"wirewatch=debug\""
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(spec)
        .map(drop)
        .map_err(|e| format!("{spec:?}: {e}"))
}

impl Config {
    /// Checks every value's domain.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError::Value {
            path: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        if jiff::tz::TimeZone::get(&self.parse.timezone).is_err() {
            return Err(err(
                "parse.timezone",
                format!("{:?} is not an IANA time zone name (e.g. \"America/Toronto\", \"Europe/Paris\", \"UTC\")", self.parse.timezone),
            ));
        }
        // Every number has a range: a value the daemon cannot run with (a channel
        // tokio refuses, a cache size that overflows) is refused here, by name.
        let ranges: [(&str, u128, u128, u128); 14] = [
            (
                "parse.max_bytes",
                self.parse.max_bytes.into(),
                1,
                MAX_FILE_BYTES.into(),
            ),
            (
                "parse.max_line_bytes",
                self.parse.max_line_bytes as u128,
                1,
                MAX_FILE_BYTES.into(),
            ),
            (
                "watch.settle_ms",
                self.watch.settle_ms.into(),
                0,
                MAX_MS.into(),
            ),
            (
                "watch.poll_interval_ms",
                self.watch.poll_interval_ms.into(),
                0,
                MAX_MS.into(),
            ),
            (
                "output.batch_records",
                self.output.batch_records as u128,
                1,
                100_000,
            ),
            ("output.batch_ms", self.output.batch_ms.into(), 0, 60_000),
            (
                "output.linger_ms",
                self.output.linger_ms.into(),
                0,
                self.output.batch_ms.into(),
            ),
            (
                "output.rotate_secs",
                self.output.rotate_secs.into(),
                0,
                100 * 365 * 86_400,
            ),
            (
                "output.rotate_keep",
                self.output.rotate_keep as u128,
                0,
                100_000,
            ),
            (
                "state.expire_days",
                self.state.expire_days.into(),
                1,
                36_500,
            ),
            ("state.cache_mib", self.state.cache_mib as u128, 0, 1 << 20),
            (
                "pipeline.workers",
                self.pipeline.workers as u128,
                0,
                MAX_WORKERS as u128,
            ),
            (
                "pipeline.channel_capacity",
                self.pipeline.channel_capacity as u128,
                1,
                65_536,
            ),
            (
                "nats.request_timeout_ms",
                self.nats.request_timeout_ms.into(),
                100,
                MAX_MS.into(),
            ),
        ];
        for (key, value, lo, hi) in ranges {
            if !(lo..=hi).contains(&value) {
                return Err(err(
                    key,
                    format!("{value} is out of range: must be {lo} to {hi}"),
                ));
            }
        }
        if !(1..=MAX_EXTRACT_MS_LIMIT).contains(&self.parse.max_extract_ms) {
            return Err(err(
                "parse.max_extract_ms",
                format!(
                    "{} is out of range: give 1 to {MAX_EXTRACT_MS_LIMIT} (one hour)",
                    self.parse.max_extract_ms
                ),
            ));
        }
        for (key, globs) in [
            ("watch.include", &self.watch.include),
            ("watch.exclude", &self.watch.exclude),
        ] {
            for g in globs {
                if let Err(e) = globset::Glob::new(g) {
                    return Err(err(key, format!("bad glob {g:?}: {e}")));
                }
            }
        }
        if self.watch.mode == WatchMode::Poll && self.watch.poll_interval_ms == 0 {
            return Err(err(
                "watch.poll_interval_ms",
                "must be at least 1 in poll mode".into(),
            ));
        }
        if self.output.path.is_empty() {
            return Err(err(
                "output.path",
                "must be a file path or \"-\" for stdout".into(),
            ));
        }
        let records = (self.sink.kind == nats::SinkKind::File && self.output.path != "-")
            .then(|| Path::new(&self.output.path));
        if let Err((key, message)) = crate::paths::check_paths(records, &self.output.rejects) {
            return Err(err(key, message));
        }
        self.http.validate(origin)?;
        if let Err(why) = check_log_level(&self.log.level) {
            return Err(err("log.level", why));
        }
        nats::validate(self, origin)?;
        Ok(())
    }
}
