//! The brief view of a record (`/events?view=brief`): what a wire shows of it, a
//! tenth of the record's bytes. Filters still look at the whole record; only what
//! is sent is cut down. The brief is read from the record's line with a partial
//! parse that skips the fields it does not keep.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An entity, by its name only.
#[derive(Deserialize, Serialize)]
struct Named {
    name: Value,
}

/// A quote, by its text and speaker only.
#[derive(Deserialize, Serialize)]
struct Quote {
    #[serde(default)]
    text: Value,
    #[serde(default)]
    speaker: Value,
}

/// What a brief keeps; fields the record lacks are left out.
#[derive(Deserialize, Serialize)]
struct Brief {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    article_id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revision: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dateline: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    posted_at: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    capture_time: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    language: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    people: Option<Vec<Named>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    places: Option<Vec<Named>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organizations: Option<Vec<Named>>,
    /// The first quote only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "first_quote"
    )]
    quotes: Option<Vec<Quote>>,
}

fn first_quote<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Quote>>, D::Error> {
    let all = Option::<Vec<Quote>>::deserialize(d)?;
    Ok(all.map(|mut q| {
        q.truncate(1);
        q
    }))
}

/// The brief of the record whose JSON line is `line`: its `article_id`, `revision`,
/// `title`, `dateline`, `posted_at`, `updated_at`, `capture_time` and `language` as
/// they are; `people`, `places` and `organizations` as `[{"name": …}]`; `quotes` as
/// the first quote's `text` and `speaker`. A line that is not a record of that
/// shape gives `{}`.
pub fn brief(line: &str) -> String {
    if !line.trim_start().starts_with('{') {
        return "{}".to_owned();
    }
    serde_json::from_str::<Brief>(line)
        .ok()
        .and_then(|b| serde_json::to_string(&b).ok())
        .unwrap_or_else(|| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_brief_keeps_what_the_wire_shows() {
        let r = json!({
            "article_id": "ab", "revision": 2, "title": "T", "dateline": "Bogotá",
            "posted_at": "2022-10-03T01:00:00-04:00", "sections": [{"paragraphs": ["long"]}],
            "people": [{"name": "Ada", "mentions": 3}], "places": [], "changes": {"x": 1},
            "quotes": [{"text": "a", "speaker": "Ada", "offset": 3}, {"text": "b"}],
        });
        let b: Value = serde_json::from_str(&brief(&r.to_string())).unwrap();
        assert_eq!(
            b,
            json!({
                "article_id": "ab", "revision": 2, "title": "T", "dateline": "Bogotá",
                "posted_at": "2022-10-03T01:00:00-04:00",
                "people": [{"name": "Ada"}], "places": [],
                "quotes": [{"text": "a", "speaker": "Ada"}],
            })
        );
        // Not a record: an empty object, not a panic.
        for bad in [
            "[1, 2]",
            "not json",
            r#"{"quotes": "x"}"#,
            r#"{"people": [1]}"#,
        ] {
            assert_eq!(brief(bad), "{}", "{bad}");
        }
    }
}
