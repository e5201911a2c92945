#!/usr/bin/env bash
# Opt-in interop check (issue #4): proves outside memcap that
#  1. a float-exact constructed model reproduces every label in PyTorch
#     (python/memcap_ref.py) and in onnxruntime (the ONNX export), softmax and
#     hardmax variants;
#  2. a trained Transformer's and MLP's logits in PyTorch match memcap's own
#     (candle) logits within 1e-5, and the PyTorch argmax memorizes;
#  3. (informational) a large constructed model is reported NOT float-exact,
#     and PyTorch/onnxruntime get exactly as many labels as memcap's f64 run;
#  4. f32 and f64 float-exact constructions (n = 3, where 1/3 rounds, and
#     n = 12) reproduce every label in PyTorch and onnxruntime in that dtype.
# Installs python/requirements.txt into a venv ($MEMCAP_PYENV, default
# $CARGO_TARGET_DIR/pyenv). The venv sees system site-packages so that an
# installed torch of the pinned version is reused: torch from PyPI on Linux
# pulls several GB of CUDA wheels. Not part of .ci/run (needs the network).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-interop}"
VENV="${MEMCAP_PYENV:-$CARGO_TARGET_DIR/pyenv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/pip" install -q -r python/requirements.txt
PY="$VENV/bin/python"

cargo build -q -p memcap
M="$CARGO_TARGET_DIR/debug/memcap"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT

echo "== 1. float-exact constructed model (N = 6, n = 2, |V| = 4, C = 2; code bits 4)"
"$M" gen -N 6 -n 2 --vocab 4 --num-classes 2 -o "$W/small.jsonl" 2>/dev/null
for attn in softmax hardmax; do
  "$M" construct "$W/small.jsonl" -o "$W/$attn.json" --code-bits 4 --attention "$attn" --verify >/dev/null
  "$M" export "$W/$attn.json" --format safetensors -o "$W/$attn" --data "$W/small.jsonl" >/dev/null
  "$M" export "$W/$attn.json" --format onnx -o "$W/$attn" --data "$W/small.jsonl"
  grep -q '"float_exact": true' "$W/$attn/config.json" || { echo "expected a float-exact model" >&2; exit 1; }
  "$PY" python/check.py "$W/$attn" "$W/small.jsonl" --expect-all
done

echo "== 2. trained models: PyTorch logits vs memcap logits (tolerance 1e-5)"
"$M" gen -N 64 -n 6 --vocab 16 --num-classes 4 --seed 1 -o "$W/train.jsonl" 2>/dev/null
"$M" train "$W/train.jsonl" --d-model 16 --heads 2 --blocks 2 --layer-norm --positional learned --steps 600 --quiet -o "$W/run-tf" >/dev/null
"$M" export "$W/run-tf" -o "$W/run-tf-x" --data "$W/train.jsonl" >/dev/null
"$PY" python/check.py "$W/run-tf-x" "$W/train.jsonl" --expect-all --tol 1e-5
"$M" train "$W/train.jsonl" --model mlp --width 32 --steps 400 --quiet -o "$W/run-mlp" >/dev/null
"$M" export "$W/run-mlp" -o "$W/run-mlp-x" --data "$W/train.jsonl" >/dev/null
"$PY" python/check.py "$W/run-mlp-x" "$W/train.jsonl" --expect-all --tol 1e-5

echo "== 3. (informational) a large constructed model is not float-exact"
"$M" gen -N 2000 -n 16 --vocab 1000 --num-classes 16 -o "$W/big.jsonl" 2>/dev/null
"$M" construct "$W/big.jsonl" -o "$W/big.json" >/dev/null
"$M" verify "$W/big.json" "$W/big.jsonl" --f64 > "$W/verify.txt"
head -n 1 "$W/verify.txt"
"$M" export "$W/big.json" --format safetensors -o "$W/big" >/dev/null
"$M" export "$W/big.json" --format onnx -o "$W/big" --data "$W/big.jsonl"
"$PY" python/check.py "$W/big" "$W/big.jsonl"

echo "== 4. float-exact constructions (--precision f32 / f64): every label exactly, in that dtype"
for n in 3 12; do
  "$M" gen -N 1000 -n "$n" --vocab 200 --num-classes 16 --seed 2 -o "$W/f$n.jsonl" 2>/dev/null
  for p in f32 f64; do
    "$M" construct "$W/f$n.jsonl" --precision "$p" -o "$W/f$n-$p.json" --verify --no-safetensors >/dev/null
    "$M" export "$W/f$n-$p.json" --format onnx -o "$W/f$n-$p" --data "$W/f$n.jsonl" >/dev/null
    "$M" export "$W/f$n-$p.json" -o "$W/f$n-$p" --data "$W/f$n.jsonl" >/dev/null
    grep -q '"float_exact": true' "$W/f$n-$p/config.json" || { echo "expected a float-exact $p model" >&2; exit 1; }
    "$PY" python/check.py "$W/f$n-$p" "$W/f$n.jsonl" --expect-all
  done
done

echo "interop-check: all required checks passed"
