//! Key phrases with YAKE (the `yake-rust` crate).
//!
//! YAKE is statistical and language-light: it needs only a stop-word list, taken from the
//! record's detected language (English or French; English otherwise). The text given to
//! it is the lede and body paragraphs, capped at [`MAX_INPUT_BYTES`] so a huge file cannot
//! stall the pipeline (YAKE's cost grows with the text: about 1 µs per byte).

use std::sync::LazyLock;

use yake_rust::{Config, StopWords};

/// Most bytes of article text handed to YAKE.
pub const MAX_INPUT_BYTES: usize = 8 * 1024;

static EN: LazyLock<Option<StopWords>> = LazyLock::new(|| StopWords::predefined("en"));
static FR: LazyLock<Option<StopWords>> = LazyLock::new(|| StopWords::predefined("fr"));
static CONFIG: LazyLock<Config> = LazyLock::new(|| Config {
    ngrams: 3,
    ..Config::default()
});

/// Up to `n` key phrases of `text` (language: ISO 639-1 code).
pub(crate) fn keywords(text: &str, language: &str, n: usize) -> Vec<String> {
    let stop = match language {
        "fr" => FR.as_ref().or(EN.as_ref()),
        _ => EN.as_ref(),
    };
    let Some(stop) = stop else {
        return Vec::new();
    };
    let text = cap(text, MAX_INPUT_BYTES);
    if text.trim().is_empty() {
        return Vec::new();
    }
    // yake-rust sorts scores with `partial_cmp().unwrap()`: never let a NaN score on odd
    // input take the pipeline down.
    let found = std::panic::catch_unwind(|| yake_rust::get_n_best(n * 2, text, stop, &CONFIG))
        .unwrap_or_default();
    let mut out: Vec<String> = Vec::with_capacity(n);
    for item in found {
        let k = item.raw.trim().to_owned();
        if k.is_empty() || out.iter().any(|o| o.eq_ignore_ascii_case(&k)) {
            continue;
        }
        out.push(k);
        if out.len() == n {
            break;
        }
    }
    out
}

fn cap(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_phrases() {
        let text = "The city council approved the new budget. The budget funds schools. \
                    Council members said the budget was fair.";
        let k = keywords(text, "en", 5);
        assert!(!k.is_empty());
        assert!(
            k.iter().any(|x| x.to_lowercase().contains("budget")),
            "{k:?}"
        );
        assert!(keywords("", "en", 5).is_empty());
        assert_eq!(cap("héllo", 2), "h");
    }
}
