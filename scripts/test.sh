#!/usr/bin/env bash
# The README's second command (and what CI runs, via .ci/run): set-up if needed, formatting and lint
# checks, then the whole test suite. The integration tests use the project venv's Python (pyarrow,
# DuckDB, Pillow, tokenizers, jsonschema) as independent oracles.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# shellcheck source=/dev/null
source .mplug-env
echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --quiet --all-targets -- -D warnings
echo "==> cargo test" >&2
cargo test --all-targets
cargo test --doc --quiet
