#!/usr/bin/env python3
"""Records torch.randn on a CUDA generator in bf16 (the reference pipeline's initial noise,
spec §9.6) as the test vector of tests/test_torch_randn.cpp (MatchesTorchOnAGpuWhereRecorded).

Usage: python3 scripts/torch_randn_vector.py --out torch_cuda_randn.json
Writes {torch, device, sm_count, max_threads_per_sm, cases: [{seed, shape, bf16_hex}]}; each
case holds the bf16 bit patterns of the tensor in order, 4 hex digits per element."""
import argparse
import json

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
a = ap.parse_args()
assert torch.cuda.is_available(), "needs a CUDA GPU"
props = torch.cuda.get_device_properties(0)
cases = []
# Latents of a 192x128 image, of 1024x1024 (the reference size) and of 2048x2048.
for seed, shape in [(42, [1, 4, 16, 24]), (0, [1, 4, 16, 24]), (42, [1, 4, 128, 128]),
                    (123456789, [1, 4, 128, 128]), (2**40 + 7, [1, 4, 128, 128]),
                    (42, [1, 4, 256, 256])]:
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(shape, generator=g, device="cuda", dtype=torch.bfloat16)
    bits = x.contiguous().view(torch.int16).flatten().cpu().tolist()
    cases.append({"seed": seed, "shape": shape,
                  "bf16_hex": "".join("%04x" % (b & 0xFFFF) for b in bits)})
out = {"torch": torch.__version__, "device": props.name, "sm_count": props.multi_processor_count,
       "max_threads_per_sm": getattr(props, "max_threads_per_multi_processor", 2048),
       "cases": cases}
with open(a.out, "w") as f:
    json.dump(out, f)
print(f"torch_randn_vector: {len(cases)} cases from torch {torch.__version__} on {props.name} "
      f"({props.multi_processor_count} SMs) -> {a.out}")
