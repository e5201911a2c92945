#!/usr/bin/env bash
# Reproduces the "Measured" table of the README (issue 14's targets): construction
# + exact verification at growing N for next-token and seq2seq, the sharded
# verification, the scaling slopes and the real-text target.
# Usage: scripts/bench-core.sh [OUTDIR] [--big] [--huge]   (default OUTDIR: target/bench-core)
#   --big  adds next-token N = 10^6 (about 1 min, 1.5 GB).
#   --huge adds next-token N = 10^7 as three processes, gen, construct and
#          verify (about 27 min, peak 14 GB, 2.5 GB of files in OUTDIR).
# Run it on an otherwise idle machine; every row prints wall time and peak RSS
# (GNU time), and the verifier's own line (k/N, seconds, what it shared).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench-core
big=0
huge=0
for a in "$@"; do
  case "$a" in
    --big) big=1 ;;
    --huge) huge=1 ;;
    *) out=$a ;;
  esac
done
mkdir -p "$out"
cargo build --release -q -p memcap
bin=target/release/memcap
timed() { /usr/bin/time -f "  wall %e s, peak RSS %M KB" "$@"; }
row() { # row NAME GEN-ARGS...: gen, then construct + exact verify, timed
  local name=$1; shift
  echo "== $name"
  $bin gen "$@" -o "$out/$name.jsonl" >/dev/null 2>&1
  timed $bin construct "$out/$name.jsonl" -o "$out/$name.model.json" --verify --no-safetensors \
    2>&1 | grep -E "construct time|memorized|shared work|wall"
}

row nt-1e4-n64 -N 10000 -n 64 --vocab 1000 --num-classes 16
row nt-1e5-n64 -N 100000 -n 64 --vocab 1000 --num-classes 16
row nt-1e5-n16 -N 100000 -n 16 --vocab 10000 --num-classes 16
row nt-3e5-n16 -N 300000 -n 16 --vocab 10000 --num-classes 16
if [ "$big" = 1 ]; then
  row nt-1e6-n16 -N 1000000 -n 16 --vocab 10000 --num-classes 16
fi
if [ "$huge" = 1 ]; then
  echo "== nt-1e7-n16: gen, construct, verify as separate processes"
  timed $bin gen -N 10000000 -n 16 --vocab 10000 --num-classes 16 -o "$out/nt-1e7.jsonl" 2>&1 | grep -E "wall"
  timed $bin construct "$out/nt-1e7.jsonl" -o "$out/nt-1e7.model.json" --no-safetensors 2>&1 | grep -E "construct time|wall"
  timed $bin verify "$out/nt-1e7.model.json" "$out/nt-1e7.jsonl" 2>&1 | grep -E "memorized|shared work|wall"
fi
row s2s-1e4-n64 -N 10000 -n 64 --vocab 1000 --num-classes 16 --task seq2seq

echo "== sharded: N = 10^5, n = 16, 4 shards, 2 at a time, then merge"
m=$out/nt-1e5-n16.model.json d=$out/nt-1e5-n16.jsonl
start=$(date +%s%N)
for i in 0 1 2 3; do echo $i; done | xargs -P 2 -I{} \
  /usr/bin/time -f "  shard {}: wall %e s, peak RSS %M KB" $bin verify "$m" "$d" --shard {}/4 -o "$out/shard{}.json" --json >/dev/null
$bin verify merge "$out"/shard{0,1,2,3}.json | grep memorized
echo "  all shards + merge: wall $(( ($(date +%s%N) - start) / 1000000 )) ms"

echo "== size vs N and n (construction only)"
$bin scaling --ns 100,316,1000,3162,10000,31623,100000 | tail -3

text=/usr/share/common-licenses/GPL-3
if [ -f "$text" ]; then
  echo "== all consistent 12-byte contexts of $text, learned positions"
  $bin gen --text "$text" -n 12 --positional learned -o "$out/text.jsonl" >/dev/null
  timed $bin construct "$out/text.jsonl" -o "$out/text.json" --positional learned --verify --no-safetensors \
    2>&1 | grep -E "params terms|memorized|wall"
fi
