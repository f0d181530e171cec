# Reference min-SNR-gamma weights from diffusers 0.28.2 (training_utils.compute_snr and the weighting of
# examples/text_to_image/train_text_to_image.py), for MinSnrWeightingTests.
# Run: ../shared/refenv/python tests/reference/min-snr/make_min_snr.py   (writes min_snr.json beside this file)
import json, os, torch
from diffusers import DDIMScheduler
from diffusers.training_utils import compute_snr

out = {}
for schedule, start, end in [("linear", 0.0001, 0.02), ("scaled_linear", 0.00085, 0.012)]:
    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=start, beta_end=end, beta_schedule=schedule)
    t = torch.tensor([0, 1, 10, 100, 250, 494, 700, 999])
    snr = compute_snr(sched, t)
    case = {"timesteps": t.tolist(), "snr": snr.tolist()}
    for gamma in [1.0, 5.0]:
        w = torch.stack([snr, gamma * torch.ones_like(t)], dim=1).min(dim=1)[0]
        case[f"epsilon_{gamma}"] = (w / snr).tolist()
        case[f"v_prediction_{gamma}"] = (w / (snr + 1)).tolist()
    # The weighted loss of a fixed prediction/target pair (B=3, 2x2x2), as the script computes it.
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 2, 2, 2, generator=g), torch.randn(3, 2, 2, 2, generator=g)
    tt = torch.tensor([5, 494, 990])
    s3 = compute_snr(sched, tt)
    w3 = torch.stack([s3, 5.0 * torch.ones_like(tt)], dim=1).min(dim=1)[0] / s3
    loss = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction="none")
    loss = (loss.mean(dim=list(range(1, len(loss.shape)))) * w3).mean()
    case["loss"] = {"pred": pred.flatten().tolist(), "target": target.flatten().tolist(), "timesteps": tt.tolist(), "gamma": 5.0, "value": loss.item()}
    out[schedule] = case
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "min_snr.json"), "w") as f:
    json.dump(out, f, indent=1)
