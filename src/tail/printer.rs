//! The printer: ties a [`Filter`] and a format to an output, and turns bad lines into
//! one-line warnings on stderr.

use std::io::{self, Write};

use serde_json::Value;

use super::format::{format_block, Style};
use crate::filter::Filter;

/// What a [`Printer`] writes per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The record's JSON line, unchanged.
    Json,
    /// A [`format_block`] block, blocks separated by a blank line.
    Block(Style),
}

/// Turns lines from any source into output: parses, filters, formats, writes.
/// Lines that are not JSON records are skipped with a one-line warning on stderr.
#[derive(Debug)]
pub struct Printer<W: Write> {
    filter: Filter,
    output: Output,
    out: W,
    printed: u64,
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`.
    pub fn new(filter: Filter, output: Output, out: W) -> Printer<W> {
        Printer {
            filter,
            output,
            out,
            printed: 0,
        }
    }

    /// Handles one complete line (without its `\n`). `origin` and `line_no` name it
    /// in warnings. Errors are only write errors.
    pub fn line(&mut self, origin: &str, line_no: u64, line: &[u8]) -> io::Result<()> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let record = match serde_json::from_slice::<Value>(line) {
            Ok(v @ Value::Object(_)) if v.get("article_id").is_some_and(Value::is_string) => v,
            Ok(_) => {
                warn(format_args!(
                    "{origin}:{line_no}: skipping a line that is not a wirewatch record (no article_id)"
                ));
                return Ok(());
            }
            Err(e) => {
                warn(format_args!(
                    "{origin}:{line_no}: skipping a line that is not JSON ({e})"
                ));
                return Ok(());
            }
        };
        if !self.filter.matches(&record) {
            return Ok(());
        }
        match self.output {
            Output::Json => {
                self.out.write_all(line)?;
                self.out.write_all(b"\n")?;
            }
            Output::Block(style) => {
                if self.printed > 0 {
                    self.out.write_all(b"\n")?;
                }
                self.out
                    .write_all(format_block(&record, &style).as_bytes())?;
            }
        }
        self.printed += 1;
        Ok(())
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// How many records were written.
    #[cfg(test)]
    pub fn printed(&self) -> u64 {
        self.printed
    }
}

/// One line on stderr, prefixed `wirewatch tail:`; a failing stderr is ignored.
pub(super) fn warn(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "wirewatch tail: {message}");
}
