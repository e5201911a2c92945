#!/usr/bin/env bash
# Side-by-side: one AdamW training step of the same Transformer in
# memcap-train (candle) and in PyTorch on CPU, at ~3k, ~30k and ~300k
# parameters, batch 64 and 512, 1 and 2 threads (memcap: data-parallel
# shards, `TrainConfig::threads`; PyTorch: torch.set_num_threads).
# Needs `pip install torch`. Usage: scripts/train/bench_step.sh [steps-scale]
# (steps per point = 2000 / 200 / 40 at 3k / 30k / 300k, times the scale).
# PyTorch runs twice: the standard attention, and the absorbed single-query
# form that memcap-train's gradient pass uses (model.rs,
# `absorbed_last_query_attention`), so both comparisons are visible.
# Prints one JSON line per measurement, then a table of ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
scale="${1:-1}"
cargo build --release -q -p memcap-train --example bench_step
bin="${CARGO_TARGET_DIR:-target}/release/examples/bench_step"
out="$(mktemp)"
for size in 3k 30k 300k; do
  case $size in 3k) steps=2000 ;; 30k) steps=200 ;; 300k) steps=40 ;; esac
  steps=$((steps * scale))
  for batch in 64 512; do
    for threads in 1 2; do
      "$bin" "$size" "$batch" "$threads" "$steps" | tee -a "$out"
      python3 scripts/train/bench_step.py "$size" "$batch" "$threads" "$steps" standard | tee -a "$out"
      python3 scripts/train/bench_step.py "$size" "$batch" "$threads" "$steps" absorbed | tee -a "$out"
    done
  done
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda r: (r["size"], r["batch"], r["threads"])
mc = {key(r): r for r in rows if r["impl"].startswith("memcap")}
pt = {key(r): r for r in rows if r["impl"].startswith("pytorch") and not r["impl"].endswith("absorbed")}
pa = {key(r): r for r in rows if r["impl"].startswith("pytorch") and r["impl"].endswith("absorbed")}
print("| params | batch | threads | memcap ms/step | PyTorch ms/step | memcap / PyTorch | PyTorch absorbed ms/step | memcap / PyTorch absorbed |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for k in mc:
    m, p, a = (d[k]["sec_per_step"] * 1e3 for d in (mc, pt, pa))
    print(f"| {mc[k]['params']:,} | {k[1]} | {k[2]} | {m:.3f} | {p:.3f} | {m / p:.2f}× | {a:.3f} | {m / a:.2f}× |")
PY
rm -f "$out"
