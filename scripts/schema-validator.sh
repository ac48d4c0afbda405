#!/usr/bin/env bash
# The independent JSON Schema validator tests/schema.rs runs: python `jsonschema`
# (with `rfc3339-validator`, without which jsonschema skips the `date-time` format
# silently), pinned, installed from PyPI into a venv under target/schema-venv/.
#
#   scripts/schema-validator.sh     # install if needed; print the venv's python
#
# scripts/test.sh exports the printed path as WIREWATCH_SCHEMA_PYTHON. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

JSONSCHEMA_VERSION=4.26.0
RFC3339_VERSION=0.1.4
DIR="$PWD/target/schema-venv"
PY="$DIR/bin/python"

ready() {
    [[ -x "$PY" ]] && "$PY" - "$JSONSCHEMA_VERSION" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
import jsonschema, rfc3339_validator  # noqa: F401
sys.exit(0 if version("jsonschema") == sys.argv[1] else 1)
PYEOF
}

if ! ready; then
    echo "schema-validator: installing jsonschema $JSONSCHEMA_VERSION (PyPI) under $DIR" >&2
    python3 -m venv "$DIR"
    "$PY" -m pip install --quiet --disable-pip-version-check \
        "jsonschema==$JSONSCHEMA_VERSION" "rfc3339-validator==$RFC3339_VERSION"
    ready || { echo "schema-validator: jsonschema not importable after install" >&2; exit 1; }
fi
echo "$PY"
