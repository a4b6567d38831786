#!/usr/bin/env python3
"""PyTorch reference for `bertqa bench`: the same BERT (post-LayerNorm encoder, QA head, HF modeling_bert.py math)
written with plain torch modules (transformers is not needed), the same step: forward, QA loss, backward, clip to norm
1, AdamW. Prints ONE JSON line with the same keys as bertqa bench. Run with the system python that has torch:
  /usr/bin/python3 test/bench/torch_bench.py --config mini --batch-size 16 --seq-len 128 --steps 5
"""
import argparse, json, math, resource, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "medium": (8, 512, 8), "base": (12, 768, 12), "large": (24, 1024, 16)}


class Layer(nn.Module):
    def __init__(s, h, heads, inter, p):
        super().__init__()
        s.heads, s.p = heads, p
        s.qkv = nn.Linear(h, 3 * h)
        s.out = nn.Linear(h, h)
        s.ln1 = nn.LayerNorm(h, eps=1e-12)
        s.ffn_in = nn.Linear(h, inter)
        s.ffn_out = nn.Linear(inter, h)
        s.ln2 = nn.LayerNorm(h, eps=1e-12)

    def forward(s, x, mask):
        B, T, H = x.shape
        d = H // s.heads
        q, k, v = s.qkv(x).view(B, T, 3, s.heads, d).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
        probs = F.dropout(scores.softmax(-1), s.p, s.training)
        ctx = (probs @ v).transpose(1, 2).reshape(B, T, H)
        h = s.ln1(x + F.dropout(s.out(ctx), s.p, s.training))
        return s.ln2(h + F.dropout(s.ffn_out(F.gelu(s.ffn_in(h))), s.p, s.training))


class BertQA(nn.Module):
    def __init__(s, vocab, layers, h, heads, max_pos=512, p=0.1):
        super().__init__()
        s.word, s.pos, s.tok_type = nn.Embedding(vocab, h, padding_idx=0), nn.Embedding(max_pos, h), nn.Embedding(2, h)
        s.ln = nn.LayerNorm(h, eps=1e-12)
        s.layers = nn.ModuleList([Layer(h, heads, 4 * h, p) for _ in range(layers)])
        s.qa = nn.Linear(h, 2)
        s.p = p

    def forward(s, ids, types, attn):
        T = ids.shape[1]
        x = s.word(ids) + s.pos(torch.arange(T))[None] + s.tok_type(types)
        x = F.dropout(s.ln(x), s.p, s.training)
        mask = (1.0 - attn[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in s.layers:
            x = layer(x, mask)
        start, end = s.qa(x).unbind(-1)
        return start, end


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="mini")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--vocab-size", type=int, default=30522)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    L, H, A = PRESETS[a.config]
    model = BertQA(a.vocab_size, L, H, A, max(512, a.seq_len)).train()
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "ln" in n]
    decay = [p for n, p in model.named_parameters() if not ("bias" in n or "ln" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    B, T = a.batch_size, a.seq_len
    ids = torch.randint(1, a.vocab_size, (B, T))
    types = (torch.arange(T) >= T // 4).long().expand(B, T)
    attn = torch.ones(B, T, dtype=torch.long)
    sp = torch.tensor([(i * 7) % T for i in range(B)])
    ep = torch.clamp(sp + 3, max=T - 1)

    def step():
        opt.zero_grad(set_to_none=True)
        s, e = model(ids, types, attn)
        loss = (F.cross_entropy(s, sp) + F.cross_entropy(e, ep)) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    print(json.dumps({
        "backend": "pytorch-cpu", "torch": torch.__version__, "threads": torch.get_num_threads(), "config": a.config,
        "params": sum(p.numel() for p in model.parameters()), "batch_size": B, "seq_len": T, "steps": a.steps,
        "step_ms": round(med, 1), "step_ms_min": round(min(times), 1), "examples_per_s": round(1000 * B / med, 2),
        "tokens_per_s": round(1000 * B * T / med), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
