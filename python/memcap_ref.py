"""Reference PyTorch loader for memcap exports: reads DIR/config.json and
DIR/model.safetensors and runs the forward pass, independently of memcap.

One Transformer forward serves both kinds of folder, as in memcap itself
(memcap-train's candle model): config.json "model" is the Transformer's
config, which a constructed export sets to attention scale 1, the
construction's attention kind (softmax by default, or hardmax), attention
only in "attention_blocks", an embedding bias and a "value" readout.
* `memcap export MODEL -o DIR` (model_type "memcap-constructed"): runs in
  the export's dtype (config.json "torch_dtype": float64, or float32) and
  returns out [B, n], one value per position (next-token: column n-1),
  which must equal the label.
* a `memcap train` run folder: runs in float64 and returns logits [B, C]
  (next-token) or [B*n, C] (seq2seq); the MLP baseline reads the flattened
  one-hot input.
"""
import json
import math
import os

import torch
from safetensors.torch import load_file


def load(folder):
    """(module, config) for an export folder or a training run folder;
    module is None when the folder has no model.safetensors (ONNX only)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    constructed = cfg.get("model_type") == "memcap-constructed"
    # Constructed models run in the dtype they were exported in; trained runs
    # (stored in f32) in f64.
    dtype = torch.float32 if constructed and cfg.get("torch_dtype") == "float32" else torch.float64
    path = os.path.join(folder, "model.safetensors")
    if not os.path.exists(path):
        return None, cfg  # an ONNX-only export folder
    w = {k: v.to(dtype) for k, v in load_file(path).items()}
    m = cfg["model"]
    if m["kind"] == "mlp":
        return TrainedMlp(m, w), cfg
    return Transformer(m, w, inputs_f32=not constructed), cfg


def _ln(x, w, b):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], w, b, eps=1e-5)


class Transformer(torch.nn.Module):
    def __init__(self, cfg, w, inputs_f32):
        super().__init__()
        self.cfg, self.w, self.inputs_f32 = cfg, w, inputs_f32

    def forward(self, tokens):  # int64 [B, n], or float [B, n, d] with vector_input
        w, c = self.w, self.cfg
        B, n = tokens.shape[:2]
        H, dh = c["heads"], c["head_dim"]
        emb = w["embed.weight"]  # [V, d]: lookup table, or the projection of vector tokens
        if c.get("vector_input"):
            # A trained model saw the f32 roundings of the vectors.
            x = tokens.to(torch.float32) if self.inputs_f32 else tokens
            x = x.to(emb.dtype) @ emb
        else:
            x = emb[tokens]
        if c.get("embed_bias"):
            x = x + w["embed.bias"]
        if c.get("positional") == "learned":
            x = x + w["pos_embed.weight"]
        scale = c.get("attention_scale")  # 0.0 is a scale (uniform attention), not a missing value
        if scale is None:
            scale = 1.0 / math.sqrt(dh)
        heads_in = c.get("attention_blocks")
        for i in range(c["blocks"]):
            p = f"blocks.{i}"
            if heads_in is None or i in heads_in:
                h = _ln(x, w[f"{p}.ln1.weight"], w[f"{p}.ln1.bias"]) if c.get("layer_norm") else x
                q, k, v = (
                    (h @ w[f"{p}.attn.{s}_proj.weight"].T).reshape(B, n, H, dh).transpose(1, 2) for s in "qkv"
                )
                s = q @ k.transpose(-1, -2)
                if scale != 1.0:
                    s = s * scale
                if c.get("attention") == "hardmax":
                    ties = (s == s.max(dim=-1, keepdim=True).values).to(s.dtype)
                    a = ties / ties.sum(dim=-1, keepdim=True)
                else:
                    a = torch.softmax(s, dim=-1)
                o = (a @ v).transpose(1, 2).reshape(B, n, H * dh)
                x = x + o @ w[f"{p}.attn.o_proj.weight"].T
            h = _ln(x, w[f"{p}.ln2.weight"], w[f"{p}.ln2.bias"]) if c.get("layer_norm") else x
            f = torch.relu(h @ w[f"{p}.ffn.fc1.weight"].T + w[f"{p}.ffn.fc1.bias"])
            x = x + f @ w[f"{p}.ffn.fc2.weight"].T + w[f"{p}.ffn.fc2.bias"]
        if c.get("layer_norm"):
            x = _ln(x, w["ln_f.weight"], w["ln_f.bias"])
        out = x @ w["head.weight"].T + w["head.bias"]  # [B, n, C], or [B, n, 1] for a value readout
        if c.get("readout") == "value":
            return out.squeeze(-1)  # [B, n]: one value per position
        return out[:, -1] if c["task"] == "next-token" else out.reshape(B * n, -1)


class TrainedMlp(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg, self.w = cfg, w

    def forward(self, tokens):  # int64 [B, n], or float [B, n, d] with vector_input
        c, w = self.cfg, self.w
        B, n = tokens.shape[:2]
        if c.get("vector_input"):
            x = tokens.reshape(B, n * c["vocab"]).to(torch.float32).to(torch.float64)  # f32 inputs, as memcap's
        else:
            x = torch.nn.functional.one_hot(tokens, c["vocab"]).reshape(B, n * c["vocab"]).to(torch.float64)
        for i in range(c["depth"] + 1):
            x = x @ w[f"layers.{i}.weight"].T + w[f"layers.{i}.bias"]
            x = torch.relu(x) if i < c["depth"] else x
        return x if c["task"] == "next-token" else x.reshape(B * n, c["num_classes"])
