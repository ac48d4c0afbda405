#!/usr/bin/env python3
"""Validates JSON lines against a JSON Schema, independently of wirewatch.

    schema_validate.py SCHEMA LINES

Checks that SCHEMA is a valid draft 2020-12 schema, then validates every line of
LINES (one JSON document a line) with jsonschema's Draft202012Validator and format
checking (`date-time`, `date`, ...). Prints one verdict a line, in order: `ok`, or
`invalid: <where>: <message>` (the first error by jsonschema's relevance). Exit 0
when every line could be judged, 2 on a usage error, 3 when the validator cannot
check formats (jsonschema or rfc3339-validator missing): without rfc3339-validator
jsonschema skips `date-time` silently, which would make the test prove nothing.
"""
import json
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import best_match
except ImportError as e:
    print(f"schema_validate: python jsonschema is missing ({e}); run scripts/schema-validator.sh", file=sys.stderr)
    sys.exit(3)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    checker = FormatChecker()
    missing = [f for f in ("date-time", "date") if f not in checker.checkers]
    if missing:
        print(f"schema_validate: jsonschema cannot check {missing} (install rfc3339-validator)", file=sys.stderr)
        return 3
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=checker)
    with open(sys.argv[2], encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"invalid: not JSON: {e}")
                continue
            err = best_match(validator.iter_errors(doc))
            if err is None:
                print("ok")
            else:
                where = "/".join(str(p) for p in err.absolute_path) or "(top)"
                print(f"invalid: {where}: {err.message}".replace("\n", " "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
