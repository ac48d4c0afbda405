//! The JSON Schema (draft 2020-12) of a record line, `docs/schema/record.schema.json`
//! embedded in the binary; `wirewatch schema record` prints it.

/// The JSON Schema of one record line (see `docs/record.md`).
pub const RECORD_SCHEMA: &str = include_str!("../../docs/schema/record.schema.json");

#[cfg(test)]
mod tests {
    use super::RECORD_SCHEMA;
    use crate::record::{Changes, Record, SCHEMA_VERSION};
    use serde_json::{json, Value};

    /// A record as `wirewatch check` prints one, read back from JSON (a daemon line,
    /// with `revision`, `supersedes` and `changes`, when `daemon`).
    fn record(daemon: bool) -> Record {
        let mut v = json!({
            "schema": SCHEMA_VERSION, "article_id": "1839577d31e01d1b",
            "source": {"path": "a.txt", "bytes": 3, "sha256": "00", "modified": null},
            "encoding": "utf-8", "dateline": null, "title": "T", "title_source": "lede_first_sentence",
            "lede": "T.", "posted_at": "2022-10-02T22:23:00-04:00", "updated_at": "2022-10-02",
            "capture_time": "2022-10-02T22:55:00-04:00", "timezone": "America/Toronto",
            "sections": [], "word_count": 1, "reading_time_min": 1, "language": "en",
            "content_hash": "00", "warnings": ["w"]
        });
        if daemon {
            v["revision"] = json!(2);
            v["supersedes"] = json!("2022-10-01");
            v["changes"] = serde_json::to_value(Changes::default()).expect("changes");
            v["emitted_at"] = json!("2022-10-03T02:55:01Z");
        }
        serde_json::from_value(v).expect("a record")
    }

    fn schema() -> Value {
        serde_json::from_str(RECORD_SCHEMA).expect("the embedded schema is JSON")
    }

    #[test]
    fn schema_names_every_field_a_record_writes_and_requires_the_constant_ones() {
        let schema = schema();
        let props = schema["properties"].as_object().expect("properties");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let checked = serde_json::to_value(record(false)).expect("serializes");
        let daemon = serde_json::to_value(record(true)).expect("serializes");
        for key in daemon.as_object().expect("object").keys() {
            assert!(props.contains_key(key), "schema lacks {key}");
        }
        for key in props.keys() {
            assert!(daemon.get(key).is_some(), "a daemon record lacks {key}");
        }
        for key in &required {
            assert!(
                checked.get(key).is_some(),
                "a check record lacks required {key}"
            );
        }
        assert_eq!(
            schema["properties"]["schema"]["const"],
            json!(SCHEMA_VERSION)
        );
        assert!(schema["$id"]
            .as_str()
            .is_some_and(|id| id.ends_with(&format!(":{SCHEMA_VERSION}"))));
    }

    #[test]
    fn utc_forms_and_precisions_sit_beside_each_stamp() {
        let v = serde_json::to_value(record(true)).expect("serializes");
        assert_eq!(v["posted_at_utc"], "2022-10-03T02:23:00Z");
        assert_eq!(v["posted_precision"], "minute");
        assert_eq!(v["updated_at"], "2022-10-02");
        assert_eq!(v["updated_at_utc"], Value::Null);
        assert_eq!(v["updated_precision"], "date");
        assert_eq!(v["capture_time_utc"], "2022-10-03T02:55:00Z");
        assert_eq!(v["supersedes_utc"], Value::Null);
        assert_eq!(v["supersedes_precision"], "date");
        assert_eq!(v["emitted_at"], "2022-10-03T02:55:01Z");
        let c = serde_json::to_value(record(false)).expect("serializes");
        assert_eq!(c["emitted_at"], Value::Null);
        for absent in ["revision", "supersedes", "supersedes_utc", "changes"] {
            assert!(c.get(absent).is_none(), "{absent} in a check record");
        }
    }

    #[test]
    fn a_written_line_reads_back_as_the_same_record() {
        let r = record(true);
        let line = serde_json::to_string(&r).expect("serializes");
        let back: Record = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back, r);
        // A line without the derived fields and `emitted_at` (schema 1) still reads.
        let mut v: Value = serde_json::from_str(&line).expect("json");
        for k in [
            "posted_at_utc",
            "posted_precision",
            "capture_time_utc",
            "emitted_at",
        ] {
            v.as_object_mut().expect("object").remove(k);
        }
        let old: Record = serde_json::from_value(v).expect("reads a schema 1 line");
        assert_eq!(old.emitted_at, None);
    }

    #[test]
    fn a_capture_time_without_offset_is_an_error_not_a_bad_line() {
        let mut r = record(false);
        r.capture_time = "yesterday".into();
        let e = serde_json::to_string(&r).expect_err("refused");
        assert!(e.to_string().contains("capture_time"), "{e}");
    }
}
