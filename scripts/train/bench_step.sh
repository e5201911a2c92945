#!/usr/bin/env bash
# Side-by-side: one training step of the same ~3k-parameter Transformer
# (batch 64, n = 8) in memcap-train (candle) and in PyTorch on CPU.
# Needs `pip install torch`. Usage: scripts/train/bench_step.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/../.."
steps="${1:-2000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-train}"
cargo build --release -q -p memcap-train --example bench_step
"$CARGO_TARGET_DIR/release/examples/bench_step" "$steps"
python3 scripts/train/bench_step.py "$steps" 1
python3 scripts/train/bench_step.py "$steps" 2
