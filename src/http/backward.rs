//! Reading a file's complete lines from its end, newest first ([`lines_back`]):
//! what `/events?last=N` and `/api/rejects` need, at a cost that follows what is
//! asked for, not the size of the file.

use std::fs::File;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;

/// Bytes read per step.
const CHUNK: u64 = 64 << 10;

/// Calls `each` with every complete line of `file` between the offsets `from` (a
/// line start) and `to`, last line first: the offset just past the line's newline,
/// and the line without it. Bytes after the last newline before `to` (a line being
/// written) are not a line. Stops when `each` breaks; tells whether it did.
pub fn lines_back(
    file: &File,
    from: u64,
    to: u64,
    mut each: impl FnMut(u64, &[u8]) -> ControlFlow<()>,
) -> io::Result<ControlFlow<()>> {
    // `buf` holds the bytes [end, end + buf.len()) not yet handed out: at most the
    // start of one line, then (once `trimmed`) whole lines ending in a newline.
    let mut buf: Vec<u8> = Vec::new();
    let mut end = to.max(from);
    let mut trimmed = false;
    loop {
        if end > from {
            let start = end.saturating_sub(CHUNK).max(from);
            let mut chunk = vec![0; (end - start) as usize];
            file.read_exact_at(&mut chunk, start)?;
            chunk.extend_from_slice(&buf);
            buf = chunk;
            end = start;
        }
        if !trimmed {
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => {
                    buf.truncate(i + 1);
                    trimmed = true;
                }
                None if end == from => return Ok(ControlFlow::Continue(())),
                None => continue,
            }
        }
        // Every line with a newline before it in `buf` is whole.
        while buf.len() > 1 {
            let body = &buf[..buf.len() - 1];
            let Some(i) = memchr::memrchr(b'\n', body) else {
                break;
            };
            let past = end + buf.len() as u64;
            if each(past, &body[i + 1..]).is_break() {
                return Ok(ControlFlow::Break(()));
            }
            buf.truncate(i + 1);
        }
        if end == from {
            // What is left starts at `from`: the first line.
            if let Some((_, body)) = buf.split_last() {
                let past = end + buf.len() as u64;
                if each(past, body).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            return Ok(ControlFlow::Continue(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn back(text: &[u8], from: u64, to: u64) -> Vec<(u64, String)> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text).unwrap();
        let mut out = Vec::new();
        let flow = lines_back(&f, from, to, |past, line| {
            out.push((past, String::from_utf8_lossy(line).into_owned()));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(flow.is_continue());
        out
    }

    #[test]
    fn lines_come_last_first_with_the_offset_past_each() {
        let t = b"a\nbb\n\nccc\npartial";
        let got = back(t, 0, t.len() as u64);
        assert_eq!(
            got,
            [
                (10, "ccc".to_owned()),
                (6, String::new()),
                (5, "bb".to_owned()),
                (2, "a".to_owned())
            ]
        );
        // Up to a hand-over in the middle, from a later line start.
        assert_eq!(back(t, 2, 6), [(6, String::new()), (5, "bb".to_owned())]);
        assert!(back(t, 0, 1).is_empty());
        assert!(back(b"", 0, 0).is_empty());
        assert!(back(b"no newline", 0, 10).is_empty());
    }

    #[test]
    fn lines_longer_than_a_chunk_and_stopping_early() {
        let long = "x".repeat(3 * CHUNK as usize + 7);
        let text = format!("first\n{long}\nlast\n");
        let got = back(text.as_bytes(), 0, text.len() as u64);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1, "last");
        assert_eq!(got[1].1, long);
        assert_eq!(got[2], (6, "first".to_owned()));
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let mut n = 0;
        let flow = lines_back(&f, 0, text.len() as u64, |_, _| {
            n += 1;
            if n == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert!(flow.is_break());
        assert_eq!(n, 2);
    }

    #[test]
    fn a_file_that_shrank_is_an_error_not_a_panic() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"a\nb\n").unwrap();
        assert!(lines_back(&f, 0, 100, |_, _| ControlFlow::Continue(())).is_err());
    }
}
