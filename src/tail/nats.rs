//! `wirewatch tail --nats`: the NATS JetStream source of the tail, feeding the same
//! [`Printer`] as the file source.

use std::io;
use std::sync::atomic::Ordering;

use super::{sys, Filter, Output, Printer, TailError};

/// `tail --nats`: the records of a JetStream stream, in stream order, through the same
/// filters and printer as the file tail; without `follow`, up to what the stream held
/// at the start.
pub(super) fn follow_nats(
    base: &crate::config::nats::NatsConfig,
    urls: &str,
    subject: &str,
    follow: bool,
    filter: Filter,
    output: Output,
) -> Result<(), TailError> {
    let rt = crate::runtime::current_thread().map_err(TailError::Runtime)?;
    let stdout = io::stdout();
    let mut printer = Printer::new(filter, output, io::BufWriter::new(stdout.lock()));
    let mut broken = None;
    let result = rt.block_on(crate::nats::tail::follow_stream(
        base,
        urls,
        None,
        subject,
        follow,
        |r| {
            let line = r.record.to_string();
            let done = printer
                .line(&r.subject, r.seq, line.as_bytes())
                .and_then(|()| printer.flush());
            match done {
                Err(e) => {
                    broken = Some(e);
                    std::ops::ControlFlow::Break(())
                }
                Ok(()) if sys::STOP.load(Ordering::Relaxed) => std::ops::ControlFlow::Break(()),
                Ok(()) => std::ops::ControlFlow::Continue(()),
            }
        },
    ));
    if let Some(e) = broken {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(TailError::Write(e));
        }
        return Ok(());
    }
    result.map_err(|source| TailError::Nats {
        urls: urls.to_owned(),
        source,
    })
}
