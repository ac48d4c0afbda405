//! The key-phrase pass's tables keyed by hashes: the per-article table of term and
//! phrase ids ([`IdTable`]) and the per-thread memo of how each word may stand at a
//! phrase's edge ([`EdgeMemo`]).

use super::words::{self, Edge};
use crate::extract::tokens::Doc;

/// An open-addressing table from non-zero `u64` keys (word hashes, packed term ids) to
/// `u32` values, kept at a load of at most one half by doubling. Smaller and flatter
/// than a `HashMap` of string or array keys, which matters because the key-phrase pass
/// probes it once or more per word. It lives in the pass's per-thread `Scratch`: `clear`
/// empties only the slots in use, so an article pays for its own words, not for
/// zeroing a table sized for the largest one seen.
#[derive(Default)]
pub(super) struct IdTable {
    pub(super) keys: Vec<u64>,
    values: Vec<u32>,
    /// Slots in use, in insertion order.
    pub(super) used: Vec<u32>,
}

impl IdTable {
    /// Empties the table and makes room for `n` keys.
    pub(super) fn clear(&mut self, n: usize) {
        let size = (2 * n.max(8)).next_power_of_two();
        if self.keys.len() < size || self.keys.len() > 4 * size.max(1 << 12) {
            self.keys = vec![0; size];
            self.values = vec![0; size];
        } else {
            for &i in &self.used {
                self.keys[i as usize] = 0;
            }
        }
        self.used.clear();
    }

    fn slot(keys: &[u64], key: u64) -> usize {
        let mask = keys.len() - 1;
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask;
        while keys[i] != key && keys[i] != 0 {
            i = (i + 1) & mask;
        }
        i
    }

    /// The value of `key` (non-zero), if it is in the table.
    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        if self.keys.is_empty() {
            return None;
        }
        let i = Self::slot(&self.keys, key);
        (self.keys[i] == key).then(|| self.values[i])
    }

    /// The value of `key` (non-zero), inserting `value` when the key is new.
    #[inline]
    pub(super) fn get_or_insert(&mut self, key: u64, value: u32) -> u32 {
        let i = Self::slot(&self.keys, key);
        if self.keys[i] == key {
            return self.values[i];
        }
        self.keys[i] = key;
        self.values[i] = value;
        self.used.push(i as u32);
        if 2 * self.used.len() > self.keys.len() {
            self.grow();
        }
        value
    }

    #[cold]
    fn grow(&mut self) {
        let size = 2 * self.keys.len();
        let mut keys = vec![0; size];
        let mut values = vec![0; size];
        for u in &mut self.used {
            let (k, v) = (self.keys[*u as usize], self.values[*u as usize]);
            let j = Self::slot(&keys, k);
            keys[j] = k;
            values[j] = v;
            *u = j as u32;
        }
        self.keys = keys;
        self.values = values;
    }

    /// Every `(key, value)` in the table, in insertion order.
    pub(super) fn entries(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.used
            .iter()
            .map(|&i| (self.keys[i as usize], self.values[i as usize]))
    }
}

/// How each word may stand at a phrase's edge, remembered by word hash across the
/// articles a thread reads: [`words::term_edge`] depends only on the folded form
/// (its lexicon flags follow from it, in a document tokenised with the gazetteer),
/// and most of an article's words were met in an earlier one. Bounded: past
/// [`EdgeMemo::MAX`] words it starts over.
#[derive(Default)]
pub(super) struct EdgeMemo {
    pub(super) table: IdTable,
}

impl EdgeMemo {
    /// Words remembered before the memo is emptied: its table (twice as many slots,
    /// 12 bytes each: 384 KiB) never grows, and fits a core's second-level cache.
    pub(super) const MAX: usize = 1 << 14;

    /// [`words::term_edge`] of token `i` (a word).
    #[inline]
    pub(super) fn edge(&mut self, doc: &Doc, i: usize) -> Edge {
        if !doc.flagged {
            return words::term_edge(doc, i);
        }
        let key = doc.hashes[i] | 1;
        if let Some(e) = self.table.get(key) {
            return Edge::from_u32(e);
        }
        if self.table.used.len() >= Self::MAX || self.table.keys.is_empty() {
            self.table.clear(Self::MAX);
        }
        let e = words::term_edge(doc, i);
        self.table.get_or_insert(key, e as u32);
        e
    }
}
