//! Recovery of a file output at a start: where its last complete line ends (so that
//! a torn tail left by a crash can be cut), and its complete lines past a position,
//! handed over one at a time through a bounded buffer, so that an output of any size
//! is recovered in the memory of its longest line.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// Bytes read at a time.
pub(super) const RECOVER_BUF: usize = 1 << 20;

/// The offset just past the last `\n` in `start..end` of `file` (`start` when there is
/// none), found by reading back from `end` a block at a time.
pub(super) fn last_line_end(file: &File, start: u64, end: u64) -> std::io::Result<u64> {
    let mut block = vec![0u8; RECOVER_BUF.min(end.saturating_sub(start) as usize)];
    let mut to = end;
    while to > start {
        let from = to.saturating_sub(block.len() as u64).max(start);
        let part = &mut block[..(to - from) as usize];
        file.read_exact_at(part, from)?;
        if let Some(p) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(from + p as u64 + 1);
        }
        to = from;
    }
    Ok(start)
}

/// Hands `each` the lines of `start..end` of `file` (which ends with a `\n`), in
/// order, without their `\n` or `\r\n`, blank ones left out, until it returns false.
pub(super) fn each_line(
    mut file: &File,
    start: u64,
    end: u64,
    each: &mut dyn FnMut(&str) -> bool,
) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(RECOVER_BUF, file.take(end - start));
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if !text.trim().is_empty() && !each(text) {
            return Ok(());
        }
    }
}

/// The lines [`crate::sink::Sink::recover`] hands over, collected (for tests).
#[cfg(test)]
pub(super) fn recovered(s: &mut super::FileSink, c: super::Committed) -> Vec<String> {
    use super::Sink;
    let mut lines = Vec::new();
    s.recover(c, &mut |l| {
        lines.push(l.to_owned());
        true
    })
    .unwrap();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{Committed, FileSink, Sink};
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    fn identity_of(path: &std::path::Path) -> (u64, u64) {
        let m = std::fs::metadata(path).unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn long_outputs_are_recovered_a_line_at_a_time_and_a_long_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        // Lines longer and shorter than the read buffer, a CRLF line, a blank line,
        // and a torn tail longer than the buffer, so the search for the last
        // complete line crosses blocks.
        let long = "x".repeat(RECOVER_BUF + 17);
        let mut want = Vec::new();
        let mut text = String::new();
        for i in 0..3000 {
            let l = if i % 1000 == 7 {
                format!("{i}{long}")
            } else {
                format!("{{\"n\":{i}}}")
            };
            text.push_str(&l);
            text.push('\n');
            want.push(l);
        }
        text.push_str("{\"crlf\":1}\r\n\n");
        want.push("{\"crlf\":1}".to_owned());
        let complete = text.len() as u64;
        text.push_str(&"y".repeat(RECOVER_BUF * 2 + 5));
        std::fs::write(&path, &text).unwrap();
        let mut s = FileSink::open(&path).unwrap();
        let start = Committed {
            offset: 0,
            identity: Some(identity_of(&path)),
        };
        assert_eq!(recovered(&mut s, start), want);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), complete);
        // The reading stops when asked to.
        let mut n = 0;
        s.recover(start, &mut |_| {
            n += 1;
            n < 10
        })
        .unwrap();
        assert_eq!(n, 10);
        // A tail with no complete line at all is cut whole.
        let c = s.append(b"").unwrap();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all("z".repeat(RECOVER_BUF + 3).as_bytes()).unwrap();
        let mut s = FileSink::open(&path).unwrap();
        assert!(recovered(&mut s, c).is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), complete);
    }
}
