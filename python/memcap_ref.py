"""Reference PyTorch loader for memcap exports: reads DIR/config.json and
DIR/model.safetensors and runs the forward pass, independently of memcap.

Two kinds of folders:
* `memcap export MODEL -o DIR` (model_type "memcap-constructed"): the
  README "Model format" pass in the export's dtype (config.json
  "torch_dtype": float64, or float32), tokens as rows:
  Z = W_E[:, tok]^T + b_E (+ P^T); per block Z += sum_h softmax(Q K^T) V W_O^T
  (hardmax: ties averaged); Z += relu(Z W_1^T + b_1) W_2^T + b_2;
  out = Z w_o^T + b_o. Returns out [B, n] (next-token: column n-1).
* a `memcap train` run folder (config.json has "model": {"kind": ...}):
  the memcap-train Transformer (scaled softmax attention, optional pre-norm
  LayerNorm, learned positions) or MLP on the flattened one-hot input.
  Returns logits [B, C] (next-token) or [B*n, C] (seq2seq).
"""
import json
import math
import os

import torch
from safetensors.torch import load_file


def load(folder):
    """(module, config) for an export folder or a training run folder."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") == "memcap-constructed":
        # Constructed models run in the dtype they were exported in
        # (config.json "torch_dtype": float64, or float32 for --precision f32).
        dtype = torch.float32 if cfg.get("torch_dtype") == "float32" else torch.float64
        w = {k: v.to(dtype) for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
        return Constructed(cfg, w), cfg
    w = {k: v.to(torch.float64) for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    kind = cfg["model"]["kind"]
    return (TrainedTransformer if kind == "transformer" else TrainedMlp)(cfg["model"], w), cfg


class Constructed(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg, self.w = cfg, w

    def forward(self, x):  # ids: int64 [B, n]; vectors: float [B, n, d]
        w, c = self.w, self.cfg
        emb = w["embed.weight"]  # [m, d]
        z = emb.T[x] if c["input_kind"] == "ids" else x.to(emb.dtype) @ emb.T
        z = z + w["embed.bias"]
        if "pos.weight" in w:
            z = z + w["pos.weight"].T
        for l in range(c["num_hidden_layers"]):
            if l in c["attention_blocks"]:
                acc, h = 0, 0
                while f"blocks.{l}.attn.{h}.q.weight" in w:
                    p = f"blocks.{l}.attn.{h}"
                    q, k, v = (z @ w[f"{p}.{s}.weight"].T for s in "qkv")
                    s = q @ k.transpose(-1, -2)  # [B, query, key]
                    if c["attention"] == "hardmax":
                        ties = (s == s.max(dim=-1, keepdim=True).values).to(s.dtype)
                        a = ties / ties.sum(dim=-1, keepdim=True)
                    else:
                        a = torch.softmax(s, dim=-1)
                    acc = acc + (a @ v) @ w[f"{p}.o.weight"].T
                    h += 1
                z = z + acc
            p = f"blocks.{l}.ffn"
            hid = torch.relu(z @ w[f"{p}.w1.weight"].T + w[f"{p}.w1.bias"])
            z = z + hid @ w[f"{p}.w2.weight"].T + w[f"{p}.w2.bias"]
        return (z @ w["readout.weight"].T + w["readout.bias"]).squeeze(-1)


def _ln(x, w, b):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], w, b, eps=1e-5)


class TrainedTransformer(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg, self.w = cfg, w

    def forward(self, tokens):  # int64 [B, n], or float [B, n, d] with vector_input
        w, c = self.w, self.cfg
        B, n = tokens.shape[:2]
        H, dh = c["heads"], c["head_dim"]
        if c.get("vector_input"):
            # memcap trains in f32: its inputs are the f32 roundings of the vectors.
            x = tokens.to(torch.float32).to(w["embed.weight"].dtype) @ w["embed.weight"]  # projection [d, d_model]
        else:
            x = w["embed.weight"][tokens]
        if c.get("positional") == "learned":
            x = x + w["pos_embed.weight"]
        for i in range(c["blocks"]):
            p = f"blocks.{i}"
            h = _ln(x, w[f"{p}.ln1.weight"], w[f"{p}.ln1.bias"]) if c.get("layer_norm") else x
            q, k, v = (
                (h @ w[f"{p}.attn.{s}_proj.weight"].T).reshape(B, n, H, dh).transpose(1, 2) for s in "qkv"
            )
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1)
            o = (a @ v).transpose(1, 2).reshape(B, n, H * dh)
            x = x + o @ w[f"{p}.attn.o_proj.weight"].T
            h = _ln(x, w[f"{p}.ln2.weight"], w[f"{p}.ln2.bias"]) if c.get("layer_norm") else x
            f = torch.relu(h @ w[f"{p}.ffn.fc1.weight"].T + w[f"{p}.ffn.fc1.bias"])
            x = x + f @ w[f"{p}.ffn.fc2.weight"].T + w[f"{p}.ffn.fc2.bias"]
        if c.get("layer_norm"):
            x = _ln(x, w["ln_f.weight"], w["ln_f.bias"])
        logits = x @ w["head.weight"].T + w["head.bias"]  # [B, n, C]
        return logits[:, -1] if c["task"] == "next-token" else logits.reshape(B * n, -1)


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
