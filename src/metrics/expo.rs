//! The two text formats of `GET /metrics` and the choice between them: the
//! Prometheus text format 0.0.4 by default, OpenMetrics 1.0.0 when the `Accept`
//! header prefers it (q-values honoured). Both are `prometheus-client`'s encoders.

use prometheus_client::registry::Registry;

/// A format of the metrics exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4: counter `HELP`/`TYPE` lines name the `_total`
    /// sample, as `promtool check metrics` expects.
    Prometheus,
    /// OpenMetrics 1.0.0 text, ending in `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when
    /// `application/openmetrics-text` has a higher q-value than any media range
    /// the text format matches (`text/plain`, `text/*`, `*/*`), or an equal one
    /// and comes first; otherwise (no header, nothing acceptable, unparsable
    /// entries) the text format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        // (q, position) of the best entry for each format.
        let mut best: [Option<(f32, usize)>; 2] = [None, None];
        for (pos, entry) in accept.split(',').enumerate() {
            let Ok(m) = entry.trim().parse::<mime::Mime>() else {
                continue;
            };
            let q = m
                .get_param("q")
                .map_or(Some(1.0), |v| v.as_str().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q) && *q > 0.0);
            let Some(q) = q else {
                continue;
            };
            let slot = match (m.type_().as_str(), m.subtype().as_str()) {
                ("application", "openmetrics-text") => 1,
                ("text", "plain") | ("text", "*") | ("*", "*") => 0,
                _ => continue,
            };
            let better = best[slot].is_none_or(|(bq, _)| q > bq);
            if better {
                best[slot] = Some((q, pos));
            }
        }
        match best {
            [_, None] => Format::Prometheus,
            [None, Some(_)] => Format::OpenMetrics,
            [Some((tq, tp)), Some((oq, op))] => {
                if oq > tq || (oq == tq && op < tp) {
                    Format::OpenMetrics
                } else {
                    Format::Prometheus
                }
            }
        }
    }
}

/// The exposition of `registry` in `format`.
pub fn encode(registry: &Registry, format: Format) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; a collector that fails leaves out its part.
    let _ = match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_format() {
        use Format::*;
        let cases: [(Option<&str>, Format); 11] = [
            (None, Prometheus),
            (Some(""), Prometheus),
            (Some("*/*"), Prometheus),
            (Some("text/plain;version=0.0.4"), Prometheus),
            (Some("application/openmetrics-text"), OpenMetrics),
            (Some("application/openmetrics-text; version=1.0.0; charset=utf-8"), OpenMetrics),
            // What Prometheus 2.x sends.
            (Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), OpenMetrics),
            (Some("text/plain;q=0.9, application/openmetrics-text;q=0.5"), Prometheus),
            (Some("application/openmetrics-text;q=0, */*"), Prometheus),
            (Some("text/plain, application/openmetrics-text"), Prometheus),
            (Some("application/json, application/openmetrics-text;q=0.2"), OpenMetrics),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "Accept: {accept:?}");
        }
    }

    #[test]
    fn counters_are_named_for_each_format() {
        let mut r = Registry::default();
        let c = prometheus_client::metrics::counter::Counter::<u64>::default();
        c.inc();
        r.register("files_seen", "Files", c);
        let text = encode(&r, Format::Prometheus);
        assert!(text.contains("# TYPE files_seen_total counter\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        let om = encode(&r, Format::OpenMetrics);
        assert!(om.contains("# TYPE files_seen counter\n"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }
}
