#!/usr/bin/env bash
# Reproduces the "Measured" table of the README: construction + exact
# verification at N = 1e4 and 1e5 (n = 64, |V| = 1000, C = 16), the scaling
# slopes, and the real-text target with learned positions.
# Usage: scripts/bench-core.sh [OUTDIR]   (default: target/bench-core)
# Run it on an otherwise idle machine; it prints wall time and peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-core}
mkdir -p "$out"
cargo build --release -q -p memcap
bin=target/release/memcap
timed() { /usr/bin/time -f "  wall %e s, peak RSS %M KB" "$@"; }

for n_seqs in 10000 100000; do
  echo "== N = $n_seqs, n = 64, |V| = 1000, C = 16: construct + exact verify"
  $bin gen -N "$n_seqs" -n 64 --vocab 1000 --num-classes 16 -o "$out/d$n_seqs.jsonl" 2>/dev/null
  timed $bin construct "$out/d$n_seqs.jsonl" -o "$out/m$n_seqs.json" --verify --no-safetensors \
    | grep -E "construct time|memorized|shared work"
done

echo "== size vs N and n (construction only)"
$bin scaling --ns 100,316,1000,3162,10000,31623,100000 | tail -3

text=/usr/share/common-licenses/GPL-3
if [ -f "$text" ]; then
  echo "== all consistent 12-byte contexts of $text, learned positions"
  $bin gen --text "$text" -n 12 --positional learned -o "$out/text.jsonl"
  timed $bin construct "$out/text.jsonl" -o "$out/text.json" --positional learned --verify --no-safetensors \
    | grep -E "params terms|memorized"
fi
