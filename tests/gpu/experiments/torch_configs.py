import sys, torch
sys.path.insert(0, "tests/gpu")
import torch_peer as tp
from torch._inductor.codecache import PyCodeCache
x = torch.randn(16384, 4096, device="cuda")
w = torch.randn(4096, device="cuda"); b = torch.randn(4096, device="cuda")
xb = x.bfloat16(); wb = w.bfloat16(); bb = b.bfloat16()
for name, f, args in [("layernorm", tp.layernorm, (x, w, b)), ("rmsnorm", tp.rmsnorm, (x, w)),
                      ("layernorm_bf16", tp.layernorm, (xb, wb, bb)), ("gelu_bf16", tp.gelu_affine, (xb, wb, bb))]:
    cf = torch.compile(f)
    for _ in range(3): cf(*args)
torch.cuda.synchronize()
mods = getattr(PyCodeCache, "modules", None) or list(getattr(PyCodeCache, "modules_no_attr", {}).values()) or list(getattr(PyCodeCache, "cache", {}).values())
for m in mods:
    for k, v in vars(m).items():
        if hasattr(v, "launchers"):
            for l in v.launchers:
                print(k, getattr(l, "config", None), "regs", getattr(l, "n_regs", None), "spills", getattr(l, "n_spills", None), "shared", getattr(l, "shared", None))
