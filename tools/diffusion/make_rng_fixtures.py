#!/usr/bin/env python3
"""Writes the random-number fixtures of ChiselDiffusionTests (Tests/ChiselDiffusionTests/Fixtures/rng/).

Run by hand, never in CI, with the pinned reference environment:

    tools/.venv/bin/python tools/diffusion/make_rng_fixtures.py

Pins: Python 3.11, torch 2.15.0 (+cu132 wheel, run on the CPU), numpy 2.4.6. The torch fixtures
depend on the CPU kernel torch picks (printed and stored in each file); they were made on an
AMD Zen 5 (AVX-512, torch capability AVX512, whose normal kernel falls back to AVX2). The file
torch_cpu_default.json comes from the same script re-run in a subprocess with
ATEN_CPU_CAPABILITY=default, torch's scalar kernel.

Outputs (all values are float32 bit patterns in hex, 8 digits each, nothing rounded; a step's
"bits" is its values' patterns concatenated):
  torch_cpu_avx2.json     torch.rand / torch.randn / Tensor.exponential_ on a CPU generator
  torch_cpu_default.json  the same cases under ATEN_CPU_CAPABILITY=default (scalar normal fill)
  philox_nv.json          AUTOMATIC1111's "NV" generator (modules/rng_philox.py), reimplemented
                          here in NumPy, checked against Random123's Philox4x32-10 known answers
                          and against the values printed in that file's docstring

Large results are stored as count + FNV-1a 64 hash of the little-endian bit patterns + a few
sampled (index, bits) pairs; small ones in full.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "Tests", "ChiselDiffusionTests", "Fixtures", "rng")

SEEDS = [0, 1, 42, 1234, 2**32 - 1, 2**32, 2**63 - 1, 0xDEADBEEFCAFEBABE]
SMALL_COUNTS = [1, 2, 3, 15, 16, 17, 31, 32, 33, 100]
LARGE_COUNTS = [1000, 4 * 64 * 64]
FULL_LIMIT = 100  # results up to this many values are stored in full


def bits_of(values):
    return np.ascontiguousarray(np.asarray(values, dtype=np.float32)).view(np.uint32)


def fnv1a64(bits):
    """FNV-1a 64 over the little-endian bytes of uint32 bit patterns."""
    h = 0xCBF29CE484222325
    for byte in np.ascontiguousarray(bits, dtype="<u4").tobytes():
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def step_record(op, count, values, extra_indices=()):
    bits = bits_of(values).ravel()
    assert bits.size == count
    rec = {"op": op, "count": count}
    if count <= FULL_LIMIT:
        rec["bits"] = "".join("%08x" % b for b in bits)
    else:
        idx = sorted(set(list(range(16)) + list(range(count - 16, count)) + list(extra_indices)))
        rec["fnv1a64"] = fnv1a64(bits)
        rec["samples"] = [[i, "%08x" % bits[i]] for i in idx]
    return rec


# ---------------------------------------------------------------- torch CPU generator

def torch_cases():
    import torch

    def run(seed, steps):
        g = torch.Generator().manual_seed(seed)
        records = []
        for op, count, *extra in steps:
            if op == "rand":
                v = torch.rand(count, generator=g)
            elif op == "randn":
                v = torch.randn(count, generator=g)
            elif op == "exponential":
                v = torch.empty(count).exponential_(1.0, generator=g)
            else:
                raise ValueError(op)
            assert v.dtype == torch.float32 and v.is_contiguous()
            records.append(step_record(op, count, v.numpy(), extra[0] if extra else ()))
        return {"seed": str(seed), "steps": records}

    cases = []
    # Single draws from a fresh generator, every seed, every op, every size.
    for seed in SEEDS:
        for op in ("randn", "rand", "exponential"):
            for count in SMALL_COUNTS + LARGE_COUNTS:
                c = run(seed, [(op, count)])
                c["name"] = "%s-%d-seed%d" % (op, count, seed)
                cases.append(c)
    # randn for every size 1..40 (the scalar / block boundary and the tail recompute).
    for seed in (0, 42):
        for count in range(1, 41):
            c = run(seed, [("randn", count)])
            c["name"] = "randn-sweep-%d-seed%d" % (count, seed)
            cases.append(c)
    # A pipeline's consecutive draws on one generator.
    pipelines = {
        "pipeline-rand-randn-randn-4x8x8": [("rand", 256), ("randn", 256), ("randn", 256)],
        "pipeline-latents-1x4x64x64-twice": [("randn", 16384), ("randn", 16384)],
        "pipeline-latents-1x4x128x128": [("randn", 65536)],
        # The scalar path's cached second value survives block fills and uniform draws.
        "cache-carry": [("randn", 3), ("randn", 16), ("randn", 1), ("randn", 5), ("rand", 2),
                        ("randn", 1), ("randn", 1), ("exponential", 3), ("randn", 2)],
        "mixed": [("randn", 17), ("exponential", 10), ("rand", 3), ("randn", 2), ("exponential", 1),
                  ("randn", 33), ("rand", 1000), ("randn", 7)],
        # Many small scalar draws, crossing mt19937's 624-word regeneration several times.
        "many-small-randn": [("randn", 7)] * 60,
        "many-small-mixed": [("randn", 1), ("rand", 1), ("exponential", 1)] * 120,
    }
    for seed in (0, 42, 0xDEADBEEFCAFEBABE):
        for name, steps in pipelines.items():
            c = run(seed, steps)
            c["name"] = "%s-seed%d" % (name, seed)
            cases.append(c)
    # A uniform of exactly 0 lands in u1 of a block: torch gives +0 there, not -0.
    zero = find_zero_uniform()
    if zero is not None:
        seed, index = zero
        count = (index // 16 + 1) * 16
        c = run(seed, [("randn", count, [index, index + 8])])
        c["name"] = "zero-uniform-seed%d-index%d" % (seed, index)
        cases.append(c)
    return cases


def find_zero_uniform():
    """A (seed, index) whose torch.rand value is exactly 0 at a block's u1 position."""
    import torch
    for seed in range(64):
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(1 << 22, generator=g).numpy()
        for i in np.flatnonzero(u == 0):
            if i % 16 < 8:
                return seed, int(i)
    return None


def torch_file():
    import torch
    return {
        "generator": "torch.Generator() (CPU, mt19937)",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY", ""),
        "cases": torch_cases(),
    }


# ---------------------------------------------------------------- A1111 "NV" (Philox)
#
# A NumPy reimplementation of stable-diffusion-webui's modules/rng_philox.py, keeping its array
# types operation by operation (uint64 products split into uint32 halves; uint32 * float32 is
# promoted to float64 by NumPy; float64 log/sqrt/sin; the result cast to float32).

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
INV32 = np.array([2.3283064e-10], dtype=np.float32)
INV32_2PI = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)


def split_u64(x):
    """(N,) uint64 -> (2, N) uint32: row 0 the low words, row 1 the high words."""
    return x.view(np.uint32).reshape(-1, 2).transpose(1, 0)


def philox_round(ctr, key):
    lo_hi0 = split_u64(ctr[0].astype(np.uint64) * PHILOX_M[0])
    lo_hi1 = split_u64(ctr[2].astype(np.uint64) * PHILOX_M[1])
    ctr[0] = lo_hi1[1] ^ ctr[1] ^ key[0]
    ctr[1] = lo_hi1[0]
    ctr[2] = lo_hi0[1] ^ ctr[3] ^ key[1]
    ctr[3] = lo_hi0[0]


def philox4x32(ctr, key, rounds=10):
    for _ in range(rounds - 1):
        philox_round(ctr, key)
        key[0] = key[0] + PHILOX_W[0]
        key[1] = key[1] + PHILOX_W[1]
    philox_round(ctr, key)
    return ctr


def box_muller_sine(x, y, log=np.log, sin=np.sin):
    u = x * INV32 + INV32 / 2
    v = y * INV32_2PI + INV32_2PI / 2
    assert u.dtype == np.float64 and v.dtype == np.float64
    s = np.sqrt(-2.0 * log(u))
    return (s * sin(v)).astype(np.float32)


class NVGenerator:
    def __init__(self, seed):
        self.seed = seed
        self.offset = 0

    def words(self, n):
        ctr = np.zeros((4, n), dtype=np.uint32)
        ctr[0] = self.offset
        ctr[2] = np.arange(n, dtype=np.uint32)
        self.offset += 1
        key = np.empty(n, dtype=np.uint64)
        key.fill(self.seed)
        key = split_u64(key)
        return philox4x32(ctr, key)

    def randn(self, shape):
        n = int(np.prod(shape))
        g = self.words(n)
        return box_muller_sine(g[0], g[1]).reshape(shape)


# Published in the docstring of modules/rng_philox.py: Generator(seed=0).randn(shape=(3, 4)).
A1111_DOCSTRING = [[-0.92466259, -0.42534415, -2.6438457, 0.14518388],
                   [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
                   [-1.07454231, -0.36314407, -1.67105067, 2.26550497]]

# Random123's known-answer vectors for philox4x32-10 (counter[4], key[2], expected[4]).
RANDOM123_KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def philox_checks():
    checks = {}
    for ctr, key, want in RANDOM123_KAT:
        c = np.array(ctr, dtype=np.uint32).reshape(4, 1).copy()
        k = np.array(key, dtype=np.uint32).reshape(2, 1).copy()
        got = philox4x32(c, k)[:, 0].tolist()
        assert got == want, ("Random123 KAT", got, want)
    checks["random123_kat"] = "3 of 3 vectors equal"

    # The docstring prints float64 values to 8 decimals. The file itself returns float32 and
    # rounds 2*pi*2^-32 to float32 (two_pow32_inv_2pi), so it cannot print those digits; the
    # docstring's numbers are what the same words give with that constant kept in double.
    # Checked both ways: our port is within 1e-6 of the docstring (the size of that constant's
    # rounding), and with only that constant changed it gives all 12 printed values exactly.
    doc = np.array(A1111_DOCSTRING, dtype=np.float64).ravel()
    got = NVGenerator(0).randn((3, 4)).astype(np.float64).ravel()
    port_diff = float(np.abs(got - doc).max())
    port_ulps = float((np.abs(got - doc) / np.spacing(np.abs(doc).astype(np.float32))).max())
    assert port_diff < 1e-6, port_diff
    g = NVGenerator(0).words(12)
    exact_2pi = 2 * math.pi * 2.0 ** -32
    u = g[0] * INV32 + INV32 / 2
    v = g[1].astype(np.float64) * exact_2pi + exact_2pi / 2
    variant = np.sqrt(-2.0 * np.log(u)) * np.sin(v)
    variant_diff = float(np.abs(variant - doc).max())
    assert variant_diff < 5e-9, variant_diff
    checks["a1111_docstring_seed0_3x4"] = (
        "port (float32 two_pow32_inv_2pi, as the code) within %.3g (%.1f float32 ulps) of the 12 "
        "printed values; with that constant in double, within %.3g (all 12 equal to 8 decimals)"
        % (port_diff, port_ulps, variant_diff))

    # NumPy's float64 log (SIMD) is not libm's; count how often that reaches the float32 result.
    n, differ, ulp_log = 0, 0, 0
    for seed in (0, 1, 42, 1234):
        g = NVGenerator(seed).words(1 << 20)
        a = box_muller_sine(g[0], g[1])
        u = g[0] * INV32 + INV32 / 2
        ulp_log += int((np.log(u) != np.array([math.log(x) for x in u.tolist()])).sum())
        b = box_muller_sine(g[0], g[1], log=lambda x: np.array([math.log(t) for t in x.tolist()]),
                            sin=lambda x: np.array([math.sin(t) for t in x.tolist()]))
        n += a.size
        differ += int((bits_of(a) != bits_of(b)).sum())
    checks["numpy_vs_libm"] = ("%d values: numpy float64 log differs from libm log in %d, "
                               "float32 results differ in %d" % (n, ulp_log, differ))
    return checks


def philox_file():
    def run(seed, counts):
        g = NVGenerator(seed)
        return {"seed": str(seed),
                "steps": [step_record("randn", n, g.randn((n,))) for n in counts]}

    cases = []
    for seed in SEEDS:
        for count in SMALL_COUNTS + LARGE_COUNTS:
            c = run(seed, [count])
            c["name"] = "nv-%d-seed%d" % (count, seed)
            cases.append(c)
    for seed in (0, 42, 0xDEADBEEFCAFEBABE):
        c = run(seed, [256, 256, 256, 1, 16384, 5])
        c["name"] = "nv-sequence-seed%d" % seed
        cases.append(c)
    # A shape: randn((3, 4)) is 12 values in row-major order, the docstring's example.
    c = run(0, [12])
    c["name"] = "nv-docstring-3x4-seed0"
    cases.append(c)
    return {
        "generator": "AUTOMATIC1111 stable-diffusion-webui modules/rng_philox.py (NumPy reimplementation)",
        "numpy": np.__version__,
        "checks": philox_checks(),
        "cases": cases,
    }


def write(name, payload):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(payload, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d bytes)" % (os.path.normpath(path), os.path.getsize(path)))


def main():
    if "--torch-json-stdout" in sys.argv:
        json.dump(torch_file(), sys.stdout, separators=(",", ":"))
        return
    os.makedirs(OUT_DIR, exist_ok=True)
    avx = torch_file()
    print("torch", avx["torch"], "capability", avx["cpu_capability"])
    write("torch_cpu_avx2.json", avx)
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-json-stdout"],
                         env=env, check=True, capture_output=True, text=True).stdout
    default = json.loads(out)
    assert default["cpu_capability"] == "DEFAULT", default["cpu_capability"]
    # Keep only the cases where the kernels can differ: normal draws of 16 or more values.
    default["cases"] = [c for c in default["cases"]
                        if any(s["op"] == "randn" and s["count"] >= 16 for s in c["steps"])
                        and not c["name"].startswith("randn-sweep")]
    write("torch_cpu_default.json", default)
    nv = philox_file()
    print("philox checks:", json.dumps(nv["checks"], indent=1))
    write("philox_nv.json", nv)


if __name__ == "__main__":
    main()
