#!/usr/bin/env bash
# The project's test command (the README's and CI's): the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked "$@"
