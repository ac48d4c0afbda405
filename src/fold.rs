//! Text folding: the accent-free, lower-case form of text that name lookups and
//! filters compare (`Montréal` → `montreal`, `’` → `'`). Extraction folds words
//! with [`push_folded`] / [`fold_into`]; `tail --person` and the page's filters
//! compare [`match_key`]s. (The story identity keeps its own, frozen folding:
//! [`crate::parse::id`].)

/// Appends the accent-folded lower-case form of `ch`.
pub fn push_folded(out: &mut String, ch: char) {
    if ch.is_ascii() {
        out.push(ch.to_ascii_lowercase());
    } else if matches!(ch, '’' | '‘') {
        out.push('\'');
    } else if let Some(s) = deunicode::deunicode_char(ch) {
        for c in s.chars() {
            out.push(c.to_ascii_lowercase());
        }
    }
}

/// The accent-folded lower-case form of a string.
pub fn fold_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(&mut out, s);
    out
}

/// Appends the accent-folded lower-case form of `s` to `out`.
pub fn fold_into(out: &mut String, s: &str) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        out[start..].make_ascii_lowercase();
        return;
    }
    for ch in s.chars() {
        push_folded(out, ch);
    }
}

/// The form a filter compares: [`fold_str`] with runs of white space made one
/// space and the ends trimmed (`"  Jean   Charest"` → `"jean charest"`).
pub fn match_key(s: &str) -> String {
    fold_str(s).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents_case_apostrophes_and_spacing() {
        assert_eq!(fold_str("Montréal"), "montreal");
        assert_eq!(fold_str("l’Île"), "l'ile");
        assert_eq!(match_key("  Jean \t  CHAREST "), "jean charest");
        assert_eq!(match_key("Québec"), "quebec");
    }
}
