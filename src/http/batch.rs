//! The records of a brief server-sent stream (`/events?view=brief` with
//! `Accept: text/event-stream`) sent together ([`Batch`]): one `event: records`
//! whose `data:` is a JSON array of briefs, at most [`BATCH_MS`] after its first
//! record, so that a busy wire costs the daemon and the browser one event per
//! batch, not one per record. The event's `id:` is its last record's.

use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::pipeline::Position;

/// How long a record may wait for others to go with it.
pub const BATCH_MS: u64 = 200;

/// Records, or bytes of briefs, after which a batch goes at once.
const MAX_RECORDS: usize = 256;
const MAX_BYTES: usize = 256 << 10;

/// Briefs waiting to go as one `event: records`.
#[derive(Debug, Default)]
pub struct Batch {
    /// `[` and the briefs so far, comma-separated.
    data: String,
    records: usize,
    last: Option<Position>,
    due: Option<Instant>,
}

impl Batch {
    /// Adds the brief `line` of the record at `id`.
    pub fn add(&mut self, id: Option<Position>, line: &str) {
        if self.records == 0 {
            self.data.clear();
            self.data.push('[');
            self.due = Some(Instant::now() + Duration::from_millis(BATCH_MS));
        } else {
            self.data.push(',');
        }
        self.data.push_str(line);
        self.records += 1;
        if id.is_some() {
            self.last = id;
        }
    }

    /// When the batch must go (none when empty).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// True when it must go now, without waiting for its time.
    pub fn full(&self) -> bool {
        self.records >= MAX_RECORDS || self.data.len() >= MAX_BYTES
    }

    /// Records in it.
    pub fn len(&self) -> usize {
        self.records
    }

    /// The event of the records so far (none when empty); the batch is empty after.
    pub fn take(&mut self) -> Option<Bytes> {
        if self.records == 0 {
            return None;
        }
        let id = self.last.map(|p| format!("id: {p}\n")).unwrap_or_default();
        let chunk = format!("{id}event: records\ndata: {}]\n\n", self.data);
        self.records = 0;
        self.last = None;
        self.due = None;
        Some(chunk.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_one_event_of_an_array_with_the_last_id() {
        let mut b = Batch::default();
        assert!(b.take().is_none() && b.due().is_none());
        let p = |offset| Position {
            dev: 1,
            ino: 2,
            offset,
        };
        b.add(Some(p(10)), r#"{"a":1}"#);
        assert!(b.due().is_some());
        b.add(Some(p(20)), r#"{"a":2}"#);
        assert_eq!(b.len(), 2);
        let chunk = b.take().unwrap();
        assert_eq!(
            std::str::from_utf8(&chunk).unwrap(),
            "id: 1-2-20\nevent: records\ndata: [{\"a\":1},{\"a\":2}]\n\n"
        );
        assert!(b.len() == 0 && b.due().is_none() && b.take().is_none());
        b.add(None, "{}");
        assert_eq!(&b.take().unwrap()[..], b"event: records\ndata: [{}]\n\n");
        for _ in 0..MAX_RECORDS {
            assert!(!b.full());
            b.add(None, "{}");
        }
        assert!(b.full());
    }
}
