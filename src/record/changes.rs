//! The `changes` object of a revision: what changed since the previous emitted version
//! of the same article (computed by [`crate::diff`], carried by [`super::Record`]).
//!
//! Paragraph indexes count body paragraphs from 1 across sections, headings excluded
//! (index 0 would be the lede, reported by `lede_changed` instead), the numbering of
//! `quotes[].paragraph`.

use serde::{Deserialize, Serialize};

/// The `changes` object of a revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Paragraph changes.
    pub paragraphs: ParagraphChanges,
    /// True when the lede differs.
    pub lede_changed: bool,
    /// The previous lede, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lede_before: Option<String>,
    /// Headings added and removed.
    pub headings: Delta,
    /// People newly named and no longer named.
    pub people: Delta,
    /// Places newly named and no longer named.
    pub places: Delta,
    /// Organizations newly named and no longer named.
    pub organizations: Delta,
    /// Quotes that are new in this version.
    pub quotes: QuoteChanges,
    /// Words in this version minus words in the previous one.
    pub word_count_delta: i64,
}

/// Paragraph changes (indexes from 1, see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParagraphChanges {
    /// Indexes (in this version) of new paragraphs.
    pub added: Vec<usize>,
    /// Texts of paragraphs of the previous version that are gone.
    pub removed: Vec<String>,
    /// Paragraphs reworded.
    pub edited: Vec<Edit>,
}

/// One reworded paragraph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// Index in this version.
    pub index: usize,
    /// Text in the previous version.
    pub before: String,
    /// Text in this version.
    pub after: String,
}

/// Items added and removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// New in this version.
    pub added: Vec<String>,
    /// Gone from this version.
    pub removed: Vec<String>,
}

/// New quotes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuoteChanges {
    /// Texts of quotes not in the previous version.
    pub added: Vec<String>,
}
