#!/usr/bin/env bash
# Compatibility wrapper for the old tenant administration script: everything
# now lives in `cargo xtask admin` (see `cargo xtask admin --help`).
# Arguments are passed through unchanged; relative paths stay relative to the
# directory you run this from.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${CARGO:-cargo}" run --quiet --manifest-path "$root/Cargo.toml" --package xtask --bin xtask -- admin "$@"
