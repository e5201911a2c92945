"""PyTorch CPU reference for memcap-train's step benchmark.

Builds exactly the Transformer of `crates/memcap-train/examples/bench_step.rs`
(V = C = 16, n = 8, 1 block, no positional encoding, no LayerNorm, bias-free
attention projections, readout at the last position, and the last block
computing only the last query, as memcap-train does) and times AdamW training
steps on one batch. Sizes: 3k (d 16, 2x8 heads, d_ff 48), 30k (d 48, 4x12,
192), 300k (d 160, 8x20, 640).

Usage: python3 scripts/train/bench_step.py [size] [batch] [threads] [steps] [standard|absorbed]
The fifth argument picks the last block's attention: `standard` (default;
K and V projected at every position) or `absorbed` (the projections moved
onto the single query, as memcap-train's gradient pass does; the same
function). `absorbed` also checks that both forms give the same logits.
Prints one JSON line.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, h, dh, ff):
        super().__init__()
        self.h, self.dh = h, dh
        self.q_proj = nn.Linear(d, h * dh, bias=False)
        self.k_proj = nn.Linear(d, h * dh, bias=False)
        self.v_proj = nn.Linear(d, h * dh, bias=False)
        self.o_proj = nn.Linear(h * dh, d, bias=False)
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x, last_only, absorbed=False):
        b, n, _ = x.shape
        xq = x[:, -1:, :] if last_only else x
        m = xq.shape[1]
        if last_only and absorbed:
            # memcap's gradient pass: the single query's attention with the
            # K/V projections moved onto the query side (same function).
            d = x.shape[-1]
            q = self.q_proj(xq[:, 0]).view(b, self.h, self.dh)              # [b, h, dh]
            u = torch.einsum("bhe,hed->bhd", q, self.k_proj.weight.view(self.h, self.dh, d))
            att = torch.softmax(u @ x.transpose(1, 2) / self.dh ** 0.5, dim=-1)  # [b, h, n]
            z = att @ x                                                     # [b, h, d]
            o = torch.einsum("bhd,hed->bhe", z, self.v_proj.weight.view(self.h, self.dh, d))
            x = xq + self.o_proj(o.reshape(b, 1, self.h * self.dh))
            return x + self.fc2(F.relu(self.fc1(x)))
        q = self.q_proj(xq).view(b, m, self.h, self.dh).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.h, self.dh).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.h, self.dh).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / self.dh ** 0.5, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, m, self.h * self.dh)
        x = xq + self.o_proj(o)
        return x + self.fc2(F.relu(self.fc1(x)))


class Tiny(nn.Module):
    def __init__(self, vocab=16, classes=16, d=16, h=2, dh=8, ff=48, blocks=1):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([Block(d, h, dh, ff) for _ in range(blocks)])
        self.head = nn.Linear(d, classes)

    def forward(self, tokens, absorbed=False):
        x = self.embed(tokens)
        for i, blk in enumerate(self.blocks):
            x = blk(x, i == len(self.blocks) - 1, absorbed)
        return self.head(x[:, -1, :])


SIZES = {"3k": (16, 2, 48), "30k": (48, 4, 192), "300k": (160, 8, 640)}


def main():
    size = sys.argv[1] if len(sys.argv) > 1 else "3k"
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    form = sys.argv[5] if len(sys.argv) > 5 else "standard"
    if form not in ("standard", "absorbed"):
        sys.exit(f"bench_step.py: the form must be standard or absorbed, got {form!r}")
    absorbed = form == "absorbed"
    if size not in SIZES:
        sys.exit(f"bench_step.py: the size must be one of {', '.join(SIZES)}, got {size!r}")
    d, h, ff = SIZES[size]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Tiny(d=d, h=h, dh=d // h, ff=ff)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    x = torch.randint(0, 16, (batch, 8))
    y = torch.randint(0, 16, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, absorbed), y)
        loss.backward()
        opt.step()
        return loss

    if absorbed:
        with torch.no_grad():
            a, b = model(x, True), model(x, False)
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), (a - b).abs().max()
    for _ in range(20):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t) / steps
    print(json.dumps({"impl": f"pytorch {torch.__version__}" + (" absorbed" if absorbed else ""), "size": size, "threads": threads, "params": params,
                      "batch": batch, "seq_len": 8, "steps": steps, "sec_per_step": float(f"{dt:.3e}")}))


if __name__ == "__main__":
    main()
