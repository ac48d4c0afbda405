//! `changes`: what a revision changed against the previous emitted version, checked
//! exactly on corpus versions, by `check --against`, and through the daemon (also
//! across a restart, where the previous version comes from the state).

mod common;

use common::Daemon;
use serde_json::{json, Value};

fn dev(name: &str) -> String {
    common::fixtures()
        .join("dev")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn body_paragraphs(r: &Value) -> Vec<String> {
    r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["paragraphs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
        })
        .collect()
}

/// ca01-8: the update inserts a word in the lede, shortens a heading, and adds a
/// paragraph at the end.
#[test]
fn lede_word_inserted_heading_changed_paragraph_added_at_end() {
    let r = common::check_against(
        &dev("007_12a23dc6f6c396f7.txt"),
        &dev("008_fccd1593fe3b7f7e.txt"),
    );
    let c = &r["changes"];
    let n = body_paragraphs(&r).len();
    assert_eq!(
        c["paragraphs"]["added"],
        json!([n]),
        "the last paragraph is new"
    );
    assert_eq!(c["paragraphs"]["removed"], json!([]));
    assert_eq!(c["paragraphs"]["edited"], json!([]));
    assert_eq!(c["lede_changed"], true);
    let before = c["lede_before"].as_str().unwrap();
    assert!(before.contains("13th year as a legislator"));
    assert!(r["lede"]
        .as_str()
        .unwrap()
        .contains("13th year as again a legislator"));
    assert_eq!(
        c["headings"],
        json!({"added": ["The campaign leading"], "removed": ["The campaign leading to the"]})
    );
    assert!(c["word_count_delta"].as_i64().unwrap() > 0);
}

/// ca07-44: the update has one more heading (and its paragraph).
#[test]
fn heading_added() {
    let r = common::check_against(
        &dev("058_da68e0778dc0574a.txt"),
        &dev("059_85126708286d006f.txt"),
    );
    let c = &r["changes"];
    let added = c["headings"]["added"].as_array().unwrap();
    assert!(
        added.contains(&json!("The education bill appears to")),
        "{c}"
    );
    assert_eq!(c["lede_changed"], false);
    assert!(c.get("lede_before").is_none());
    assert_eq!(c["paragraphs"]["added"], json!([body_paragraphs(&r).len()]));
}

/// Hand-made: a paragraph moved, one deleted, one reworded, a person newly named.
#[test]
fn moved_deleted_edited_and_a_person_newly_named() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.txt");
    let new = dir.path().join("new.txt");
    std::fs::write(
        &old,
        "(Ottawa) The federal budget was tabled on Tuesday by the finance minister.\nPosted at 10:00 a.m.\n\
         First paragraph explains the deficit and its causes in detail.\n\
         Second paragraph covers the opposition's reaction to the plan.\n\
         Third paragraph will be deleted in the next version of the story.\n\
         Fourth paragraph describes the housing measures announced today.\n",
    )
    .unwrap();
    std::fs::write(
        &new,
        "(Ottawa) The federal budget was tabled on Tuesday by the finance minister.\nPosted at 10:00 a.m.\nUpdated at 11:00 a.m.\n\
         Fourth paragraph describes the housing measures announced today.\n\
         First paragraph explains the deficit and its causes in detail.\n\
         Second paragraph covers the opposition's angry reaction to the plan.\n\
         Finance Minister Chrystia Freeland defended the plan in the House of Commons.\n",
    )
    .unwrap();
    let r = common::check_against(old.to_str().unwrap(), new.to_str().unwrap());
    let c = &r["changes"]["paragraphs"];
    assert_eq!(
        c["added"],
        json!([4]),
        "only the new last paragraph is added; a moved one is not"
    );
    assert_eq!(
        c["removed"],
        json!(["Third paragraph will be deleted in the next version of the story."])
    );
    assert_eq!(
        c["edited"],
        json!([{
            "index": 3,
            "before": "Second paragraph covers the opposition's reaction to the plan.",
            "after": "Second paragraph covers the opposition's angry reaction to the plan."
        }])
    );
    assert_eq!(
        r["changes"]["people"]["added"],
        json!(["Chrystia Freeland"]),
        "{}",
        r["changes"]
    );
    assert_eq!(r["changes"]["people"]["removed"], json!([]));
}

/// Through the daemon, across a restart: revision 2's `changes` equal what
/// `check --against` prints for the same pair.
#[test]
fn daemon_revision_two_matches_check_against() {
    let manifest = common::manifest();
    let first = manifest
        .iter()
        .find(|e| e.file == "007_12a23dc6f6c396f7.txt")
        .unwrap();
    let update = manifest
        .iter()
        .find(|e| e.file == "008_fccd1593fe3b7f7e.txt")
        .unwrap();
    let mut d = Daemon::new("");
    d.start();
    d.drop_fixture(first, "first.txt");
    let recs = d.wait_records(1);
    assert_eq!(
        recs[0]["changes"],
        Value::Null,
        "revision 1 has changes: null"
    );
    assert_eq!(d.stop(), 0);
    d.start();
    d.drop_fixture(update, "update.txt");
    let recs = d.wait_records(2);
    assert_eq!(d.stop(), 0);
    assert_eq!(recs[1]["revision"], 2);
    let expected = common::check_against(&dev(&first.file), &dev(&update.file));
    assert_eq!(recs[1]["changes"], expected["changes"]);
}
