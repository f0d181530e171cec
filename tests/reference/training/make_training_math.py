"""Reference values for the training loop's math (issue 14, item 6): gradient accumulation, global-norm clipping,
linear warm-up and AdamW, with torch.optim.AdamW and torch.nn.utils.clip_grad_norm_ on two tiny parameters.

Run:  ../shared/refenv/python tests/reference/training/make_training_math.py
Writes training_math.json next to this script (the C# test TrainerMathTests reads it).

The model: parameters a (2,) and b (1,). Micro-batch c (0-based over the whole run, c = (step-1)*accum + m) has
loss_c = sum(G[c] * w) + 0.5 * |w|^2, so its gradient is G[c] + w. Each micro-batch loss is divided by accum before
backward (gradients summed = mean gradient), the global norm over a and b is clipped to max_norm (0 = off), and
AdamW steps at lr * min(1, step / warmup) (1-based step: linear from 0 over `warmup` steps, full lr at step warmup).
The eps of 1.0 is larger than usual on purpose: with a tiny eps Adam's update hardly depends on the gradient's
scale, so a wrongly scaled gradient would go unnoticed.
"""
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
G = [  # (a0, a1, b) per micro-batch
    [6.0, 8.0, 0.0], [2.0, 0.0, 6.0],
    [-3.0, 1.0, 2.0], [1.0, -5.0, 4.0],
    [0.5, 0.5, -9.0], [4.0, 2.0, 1.0],
]
A0, B0 = [1.0, -2.0], [0.5]
LR, WARMUP, WD, BETAS, EPS, STEPS, ACCUM = 0.1, 2, 0.1, (0.9, 0.999), 1.0, 3, 2


def run(max_norm):
    a = torch.tensor(A0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = torch.optim.AdamW([a, b], lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    steps = []
    for s in range(1, STEPS + 1):
        lr = LR * min(1.0, s / WARMUP)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        losses = []
        for m in range(ACCUM):
            c = (s - 1) * ACCUM + m
            g = torch.tensor(G[c])
            w = torch.cat([a, b])
            loss = (g * w).sum() + 0.5 * (w * w).sum()
            (loss / ACCUM).backward()
            losses.append(loss.item())
        grad_norm = torch.cat([a.grad, b.grad]).norm().item()
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_([a, b], max_norm)
        opt.step()
        steps.append({"step": s, "lr": lr, "loss": sum(losses) / ACCUM, "grad_norm_before_clip": grad_norm,
                      "a": a.detach().tolist(), "b": b.detach().tolist()})
    return steps


def main():
    out = {
        "G": G, "a0": A0, "b0": B0, "lr": LR, "warmup": WARMUP, "weight_decay": WD, "betas": list(BETAS), "eps": EPS,
        "steps": STEPS, "accum": ACCUM,
        "torch": torch.__version__,
        "runs": {"no_clip": run(0.0), "clip_1": run(1.0), "clip_100": run(100.0)},
    }
    with open(os.path.join(HERE, "training_math.json"), "w") as f:
        json.dump(out, f, indent=1)
    for k, v in out["runs"].items():
        print(k, [(r["grad_norm_before_clip"], r["a"], r["b"]) for r in v])


if __name__ == "__main__":
    main()
