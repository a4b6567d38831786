#!/usr/bin/env python3
"""PyTorch reference for `bertqa bench`: the same BERT (post-LayerNorm encoder, QA head, HF modeling_bert.py math)
written with plain torch modules (transformers is not needed), the same step: forward, QA loss, backward, clip to norm
1, AdamW; or with --inference, as `bertqa bench --inference`, a forward pass in eval mode under torch.no_grad() with
the logits read back. Prints ONE JSON line with the same keys as bertqa bench. Run with the system python that has torch:
  /usr/bin/python3 test/bench/torch_bench.py --config mini --batch-size 16 --seq-len 128 --steps 5
On a GPU (test/bench/gpu.sh): --device cuda, float32 without TF32 unless --tf32; --hf trains transformers'
BertForQuestionAnswering instead, as a check that this module is the same work.
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
        x = s.word(ids) + s.pos(torch.arange(T, device=ids.device))[None] + s.tok_type(types)
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
    ap.add_argument("--inference", action="store_true", help="time forward passes (eval mode, torch.no_grad) instead of training steps")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on cuda (default: exact float32)")
    ap.add_argument("--hf", action="store_true", help="transformers' BertForQuestionAnswering instead of the module above")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    cuda = a.device.startswith("cuda")
    torch.backends.cuda.matmul.allow_tf32 = a.tf32  # PyTorch's float32 default on Ampere+ is exact float32; say so
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(0)
    L, H, A = PRESETS[a.config]
    if a.hf:
        from transformers import BertConfig, BertForQuestionAnswering
        cfg = BertConfig(vocab_size=a.vocab_size, hidden_size=H, num_hidden_layers=L, num_attention_heads=A, intermediate_size=4 * H,
                         max_position_embeddings=max(512, a.seq_len), attn_implementation="eager")
        hf = BertForQuestionAnswering(cfg).to(a.device).train()
        model = lambda ids, types, attn: (lambda o: (o.start_logits, o.end_logits))(hf(input_ids=ids, token_type_ids=types, attention_mask=attn))
        named = list(hf.named_parameters())
    else:
        module = BertQA(a.vocab_size, L, H, A, max(512, a.seq_len)).to(a.device).train()
        model, named = module, list(module.named_parameters())
    params = [p for _, p in named]
    no_decay = [p for n, p in named if "bias" in n or "ln" in n or "LayerNorm" in n]
    decay = [p for n, p in named if not ("bias" in n or "ln" in n or "LayerNorm" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    B, T = a.batch_size, a.seq_len
    ids = torch.randint(1, a.vocab_size, (B, T), device=a.device)
    types = (torch.arange(T, device=a.device) >= T // 4).long().expand(B, T)
    attn = torch.ones(B, T, dtype=torch.long, device=a.device)
    sp = torch.tensor([(i * 7) % T for i in range(B)], device=a.device)
    ep = torch.clamp(sp + 3, max=T - 1)

    def step():
        opt.zero_grad(set_to_none=True)
        s, e = model(ids, types, attn)
        loss = (F.cross_entropy(s, sp) + F.cross_entropy(e, ep)) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    def infer():
        with torch.no_grad():
            s, e = model(ids, types, attn)
            return s.cpu().numpy(), e.cpu().numpy()  # the logits read back, as prediction reads them

    if a.inference:
        (hf if a.hf else module).eval()
        step = infer
    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu0 = [], time.process_time()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()  # loss.item() waits for the GPU
        times.append((time.perf_counter() - t0) * 1000)
    cpu_ms = (time.process_time() - cpu0) * 1000 / a.steps  # all threads' CPU time, as bertqa bench's cpu_ms_per_step
    med = statistics.median(times)
    out = {
        "mode": "inference" if a.inference else "train", "backend": f"pytorch-{a.device}" + ("-tf32" if cuda and a.tf32 else "") + ("-hf" if a.hf else ""), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "config": a.config, "params": sum(p.numel() for p in params), "batch_size": B, "seq_len": T, "steps": a.steps,
        "cpu_ms_per_step": round(cpu_ms, 1), "step_ms": round(med, 1), "step_ms_min": round(min(times), 1), "examples_per_s": round(1000 * B / med, 2),
        "tokens_per_s": round(1000 * B * T / med), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if cuda:
        out["device_name"] = torch.cuda.get_device_name()
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
