"""Makes the PyTorch pickle checkpoints the allow-list unpickler is tested on (tests/reference/pickle/).

Run from the repository root with the reference environment (torch 1.13):
    ../shared/refenv/python tests/reference/pickle/make_pickle.py

Writes:
  state.pt          torch.save zip format (protocol 2): fp32/fp16/bf16/int64/bool tensors, a Parameter, views sharing
                    one storage (a row slice, a strided column, a transposed tensor), a 0-dim tensor, non-tensor entries
  state_p4.pt       the same dict with pickle_protocol=4 (STACK_GLOBAL, MEMOIZE, FRAME)
  legacy.pt         the same dict with _use_new_zipfile_serialization=False (legacy format)
  nested.ckpt       {"state_dict": dict, "global_step": 7, "epoch": 1} as SD/Lightning checkpoints hold it
  expected.safetensors  every tensor of the dict, contiguous, as the reference values
  evil_*.pt/.pkl    pickles whose globals must be refused: os.system (pickled as posix.system), builtins.eval,
                    subprocess.Popen, torch.storage._load_from_bytes, builtins.getattr; the payload would create
                    /tmp/selfcascade_pickle_pwned_<name> if a real unpickler ran it
"""
import os, pickle, subprocess, builtins, collections
import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
g = torch.Generator().manual_seed(0)

base = torch.randn(6, 4, generator=g)
sd = collections.OrderedDict()
sd["conv.weight"] = torch.randn(4, 3, 3, 3, generator=g)
sd["conv.bias"] = torch.randn(4, generator=g)
sd["half.weight"] = torch.randn(5, 7, generator=g).half()
sd["bf16.weight"] = torch.randn(3, 8, generator=g).to(torch.bfloat16)
sd["steps"] = torch.arange(10, dtype=torch.int64)
sd["mask"] = torch.tensor([True, False, True])
sd["param"] = torch.nn.Parameter(torch.randn(2, 3, generator=g))
sd["shared.full"] = base
sd["shared.rows"] = base[2:5]            # contiguous view with a storage offset
sd["shared.col"] = base[:, 1]            # strided view of the same storage
sd["transposed"] = torch.randn(3, 5, generator=g).t()
sd["scalar"] = torch.tensor(3.5)
sd["empty"] = torch.zeros(0, 4)
sd["note"] = "not a tensor"
sd["count"] = 42

torch.save(sd, os.path.join(here, "state.pt"))
torch.save(sd, os.path.join(here, "state_p4.pt"), pickle_protocol=4)
torch.save(sd, os.path.join(here, "legacy.pt"), _use_new_zipfile_serialization=False)
torch.save({"state_dict": sd, "global_step": 7, "epoch": 1}, os.path.join(here, "nested.ckpt"))
save_file({k: v.detach().contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)},
          os.path.join(here, "expected.safetensors"))


def marker(name):
    return f"/tmp/selfcascade_pickle_pwned_{name}"


class OsSystem:
    def __reduce__(self):
        return (os.system, (f"touch {marker('os')}",))


class Eval:
    def __reduce__(self):
        return (builtins.eval, (f"open('{marker('eval')}', 'w').close()",))


class Popen:
    def __reduce__(self):
        return (subprocess.Popen, (["touch", marker("popen")],))


class LoadFromBytes:
    def __reduce__(self):
        inner = pickle.dumps(OsSystem())
        return (torch.storage._load_from_bytes, (inner,))


class GetAttr:
    def __reduce__(self):
        return (getattr, (collections.OrderedDict, "fromkeys"))


for name, obj in [("os", OsSystem()), ("eval", Eval()), ("popen", Popen()), ("load_from_bytes", LoadFromBytes()),
                  ("getattr", GetAttr())]:
    # As a value inside an otherwise ordinary state dict, in torch.save's zip format ...
    torch.save({"w": torch.ones(2), "payload": obj}, os.path.join(here, f"evil_{name}.pt"))
# ... and as a bare protocol-4 pickle (STACK_GLOBAL) and a protocol-0 one (GLOBAL/INST text opcodes).
with open(os.path.join(here, "evil_p4.pkl"), "wb") as f:
    pickle.dump(OsSystem(), f, protocol=4)
with open(os.path.join(here, "evil_p0.pkl"), "wb") as f:
    pickle.dump(OsSystem(), f, protocol=0)
for name in ["os", "eval", "popen", "load_from_bytes", "getattr"]:
    assert not os.path.exists(marker(name))
print("ok", sorted(os.listdir(here)))
