#!/usr/bin/env bash
# A long fuzzing run of the YAML edits (tests/testsuite/fuzz_yaml.rs) on stable Rust, outside CI.
# Usage: fuzz/run.sh [CASES_PER_TARGET]   (default 20000; eight targets)
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-20000}
start=$(date +%s)
FUZZ_CASES=$cases cargo test --release --locked --test testsuite fuzz_yaml:: -- --nocapture 2>&1 \
  | grep -E 'fuzz executions|test result|panicked|failing|wrote a file|idempotent'
echo "budget: $cases cases per target, $(( $(date +%s) - start )) s"
