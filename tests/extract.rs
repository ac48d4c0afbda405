//! `wirewatch check` on the seed: the extract stage's "done when" points (people,
//! places, organizations, quotes and speakers, dates), through the real binary.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

fn seed_record() -> Value {
    let out = Command::new(common::bin())
        .args(["check", "--reference-time", "2022-10-03T02:55:00Z"])
        .arg(common::seed())
        .output()
        .expect("run wirewatch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    serde_json::from_str(text.lines().next().expect("one record")).expect("JSON record")
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x["name"].as_str().expect("name").to_owned())
        .collect()
}

#[test]
fn seed_people() {
    let r = seed_record();
    let want: BTreeSet<String> = [
        "Antony Blinken",
        "Jair Bolsonaro",
        "Luiz Inacio Lula da Silva",
        "Nicolas Maduro",
        "Brian Nichols",
        "Gustavo Petro",
        "Gabriel Boric",
        "Pedro Castillo",
        "Joe Biden",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names(&r["people"]), want);
    let blinken = r["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Antony Blinken")
        .unwrap();
    let aliases: Vec<&str> = blinken["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(aliases.contains(&"Mr. Blinken"), "{aliases:?}");
    assert!(aliases.contains(&"Blinken"), "{aliases:?}");
    let roles: Vec<&str> = blinken["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(roles.contains(&"US Secretary of State"), "{roles:?}");
    assert!(blinken["mentions"].as_u64().unwrap() >= 6);
}

#[test]
fn seed_places() {
    let r = seed_record();
    let places = names(&r["places"]);
    for want in [
        "Washington",
        "Colombia",
        "Brazil",
        "Ukraine",
        "United States",
        "Venezuela",
        "Bogota",
        "Santiago",
        "Lima",
        "Peru",
        "Nicaragua",
        "Haiti",
        "Los Angeles",
        "Latin America",
    ] {
        assert!(places.contains(want), "{want} missing from {places:?}");
    }
    let people = names(&r["people"]);
    assert!(places.is_disjoint(&people), "{places:?} vs {people:?}");
    // Every person name word is not a place either (`Washington` is never a person).
    for p in &people {
        assert!(!places.contains(p.split(' ').next_back().unwrap_or("")));
    }
    let lima = r["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Lima")
        .unwrap();
    assert_eq!(lima["kind"], "city");
    assert_eq!(lima["country"], "PE");
}

#[test]
fn seed_organizations() {
    let r = seed_record();
    let orgs = r["organizations"].as_array().unwrap();
    let oas: Vec<&Value> = orgs
        .iter()
        .filter(|o| o["name"] == "Organization of American States")
        .collect();
    assert_eq!(oas.len(), 1, "{orgs:?}");
    assert_eq!(oas[0]["acronym"], "OAS");
    // The acronym is not a second organization.
    assert!(!orgs.iter().any(|o| o["name"] == "OAS"));
    assert!(orgs.iter().any(|o| o["name"] == "State Department"));
    assert!(
        !orgs
            .iter()
            .any(|o| o["name"].as_str().unwrap().contains("Drug Enforcement")),
        "{orgs:?}"
    );
}

#[test]
fn seed_quotes() {
    let r = seed_record();
    let quotes = r["quotes"].as_array().unwrap();
    let speaker = |start: &str| -> Value {
        quotes
            .iter()
            .find(|q| q["text"].as_str().unwrap().starts_with(start))
            .unwrap_or_else(|| panic!("no quote {start:?} in {quotes:?}"))["speaker"]
            .clone()
    };
    assert_eq!(
        speaker("We have never had such strong relations with the southern hemisphere"),
        "Brian Nichols"
    );
    assert_eq!(speaker("We don’t judge countries"), "Brian Nichols");
    assert_eq!(
        speaker("the second round will be held in the same spirit of peace and civic duty"),
        "Antony Blinken"
    );
    // Scare quotes have no speaker; a quoted title is not a quote.
    assert_eq!(speaker("model for the region"), Value::Null);
    assert!(!quotes.iter().any(|q| q["text"] == "Summit of the Americas"));
    // Paragraph indexes: 0 is the lede; headings are not counted.
    let nichols = quotes
        .iter()
        .find(|q| q["text"].as_str().unwrap().starts_with("We don’t judge"))
        .unwrap();
    assert_eq!(nichols["paragraph"], 5);
}

#[test]
fn seed_dates() {
    let r = seed_record();
    let dates = r["dates"].as_array().unwrap();
    assert!(
        dates
            .iter()
            .any(|d| d["text"] == "October 30" && d["date"] == "2022-10-30"),
        "{dates:?}"
    );
    assert!(dates
        .iter()
        .any(|d| d["text"] == "last March" && d["date"] == "2022-03" && d["kind"] == "month"));
    assert!(r["keywords"].as_array().is_some_and(|k| !k.is_empty()));
}
