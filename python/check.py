"""Runs a memcap export (or training run folder) over a dataset in PyTorch
(memcap_ref.py) and, when present, in onnxruntime (DIR/model.onnx), and
reports k/N.

    python check.py DIR DATA [--expect-all] [--tol 1e-5]

DATA is memcap's JSONL or CSV dataset format (the format is told by the
first line that is not blank or a `#` comment: `{` starts JSONL).

Constructed models: an example counts only if the output, in the export's
dtype (config.json "torch_dtype"), *equals*
its integer label at every claimed position (next-token: the last). Trained
run folders: argmax accuracy, and if DIR/logits.json (written by
`memcap export RUN --data DATA`) exists, the largest |logit difference|
against memcap's own (candle, f32) logits, which must be <= --tol times
the largest |logit| (at least 1).
Exit status 1 if a requirement fails.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

import memcap_ref


def read_jsonl(path):
    toks, labels = [], []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if "memcap_dataset" in r:
                continue
            toks.append(r["tokens"])
            row = [r["label"]] if "label" in r else r["labels"]
            # Seq2seq positions without a label (null or -100) are not claimed.
            labels.append([IGNORE if y is None else y for y in row])
    return toks, np.array(labels, dtype=np.int64)


IGNORE = -100


def read_csv(path):
    """memcap's CSV format: a header naming tok_0..tok_{n-1}, then `label`
    (next-token) or lab_0..lab_{n-1} (seq2seq; empty or -100 = no label);
    lines starting with `#` are comments. Integral floats (`2.0`) are
    integers, as memcap reads them; errors name the file's line."""
    import csv

    def integer(text, lineno, col):
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not v.is_integer():
            sys.exit(f"{path}: line {lineno}: {col} = {text!r} is not an integer")
        return int(v)

    with open(path, newline="", encoding="utf-8-sig") as f:
        numbered = [(n, line) for n, line in enumerate(f, 1) if line.strip() and not line.startswith("#")]
    if not numbered:
        sys.exit(f"{path}: no header row")
    rows = [(n, [x.strip() for x in r]) for n, line in numbered for r in csv.reader([line])]
    hline, header = rows[0]
    n_tok = sum(1 for h in header if h.startswith("tok_"))
    rest = header[n_tok:]
    if header[:n_tok] != [f"tok_{k}" for k in range(n_tok)] or n_tok == 0 or not (
        rest == ["label"] or rest == [f"lab_{k}" for k in range(n_tok)]
    ):
        sys.exit(f"{path}: line {hline}: the header must be tok_0..tok_{{n-1}} then label or lab_0..lab_{{n-1}}, got {header}")
    toks, labels = [], []
    for n, r in rows[1:]:
        if len(r) != len(header):
            sys.exit(f"{path}: line {n}: {len(r)} fields, the header has {len(header)}")
        toks.append([integer(v, n, c) for v, c in zip(r[:n_tok], header)])
        labels.append([IGNORE if v in ("", "-100") else integer(v, n, c) for v, c in zip(r[n_tok:], rest)])
    return toks, np.array(labels, dtype=np.int64)


def read_data(path):
    with open(path, encoding="utf-8-sig") as f:
        first = next((line for line in f if line.strip() and not line.lstrip().startswith("#")), "")
    return read_jsonl(path) if first.lstrip().startswith("{") else read_csv(path)


def batches(n, size=1024):
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("data")
    ap.add_argument("--expect-all", action="store_true", help="fail unless every example is reproduced")
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    model, cfg = memcap_ref.load(a.dir)
    toks, labels = read_data(a.data)
    vectors = isinstance(toks[0][0], list)
    x = np.array(toks, dtype=np.float64 if vectors else np.int64)
    N = len(toks)
    ok = True
    if cfg.get("model_type") == "memcap-constructed":
        cols = [-1] if cfg["task"] == "next-token" else list(range(x.shape[1]))
        runs = {}
        if model is not None:
            with torch.no_grad():
                runs["pytorch"] = np.concatenate([model(torch.from_numpy(x[i:j])).numpy() for i, j in batches(N)])
        onnx_path = os.path.join(a.dir, "model.onnx")
        if os.path.exists(onnx_path):
            import onnx
            import onnxruntime as ort

            onnx.checker.check_model(onnx_path)
            sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            xo = x.astype(np.float32) if vectors and cfg.get("torch_dtype") == "float32" else x
            runs["onnxruntime"] = np.concatenate([sess.run(None, {name: xo[i:j]})[0] for i, j in batches(N)])
        print(f"model {a.dir}: constructed, {cfg.get('torch_dtype')}, float_exact = {cfg.get('float_exact')}")
        for name, out in runs.items():
            got = out[:, cols]
            skip = labels == IGNORE
            exact = int(((got == labels) | skip).all(axis=1).sum())
            rounded = int(((np.rint(got) == labels) | skip).all(axis=1).sum())
            print(f"{name:<12} memorized {exact}/{N} (output == label exactly; {rounded}/{N} after rounding)")
            ok &= exact == N or not a.expect_all
    elif model is None:
        print(f"{a.dir}: no model.safetensors to run")
        ok = False
    else:
        with torch.no_grad():
            logits = np.concatenate([model(torch.from_numpy(x[i:j])).numpy() for i, j in batches(N)])
        pred = logits.argmax(axis=-1).reshape(labels.shape)
        k = int(((pred == labels) | (labels == IGNORE)).all(axis=1).sum())
        print(f"model {a.dir}: trained {cfg['model']['kind']}")
        print(f"pytorch      memorized {k}/{N} (argmax)")
        ok &= k == N or not a.expect_all
        ref_path = os.path.join(a.dir, "logits.json")
        if os.path.exists(ref_path):
            with open(ref_path) as f:
                doc = json.load(f)
            ref = np.array(doc["logits"], dtype=np.float64)
            st_path = os.path.join(a.dir, "model.safetensors")
            if "model_sha256" in doc and os.path.exists(st_path):
                import hashlib

                with open(st_path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                if digest != doc["model_sha256"]:
                    print("logits       logits.json was written for another model.safetensors: not compared")
                    print("interop check:", "FAIL")
                    return 1
            if ref.shape != logits.shape:
                print(f"logits       logits.json has shape {ref.shape}, this data gives {logits.shape}: made on other data, not compared")
                print("interop check:", "FAIL")
                return 1
            # memcap computes in f32, the reference in f64: compare relative to
            # the logit scale (an f32 rounding is ~6e-8 of it per operation).
            scale = max(1.0, float(np.abs(ref).max()))
            diff = float(np.abs(ref - logits).max())
            print(
                f"logits       max |pytorch - memcap| = {diff:.3e} over {ref.size} values, "
                f"{diff / scale:.3e} of the largest |logit| {scale:.3g} (tolerance {a.tol:g} relative)"
            )
            ok &= diff / scale <= a.tol
    print("interop check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
