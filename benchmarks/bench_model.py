"""Speed and memory of the DualFocus presets.

Measures, for ``tiny`` on a [4, 5, 3, 128, 128] batch and ``paper`` on
[1, 5, 3, 256, 256]: forward time (eval, no grad), forward+backward time
(train mode, sum of depth as the loss), peak memory of each, and parameter
counts. Results go to ``benchmarks/results/model.json``.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU each
measurement runs in a fresh subprocess and reports the rise of the process's
peak resident set size (``resource.getrusage(...).ru_maxrss``) over its
resident size just before the first call, i.e. what one forward (or
forward+backward) adds on top of the model and its inputs.

Usage::

    python benchmarks/bench_model.py [--device cpu|cuda] [--repeats 3] [--threads N]

Timings on a shared machine are provisional: compare only within one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from dflib.utils import benchmark_output, cpu_model

CASES = {"tiny": (4, 5, 3, 128, 128), "paper": (1, 5, 3, 256, 256)}
RESULTS = Path(__file__).resolve().parent / "results" / "model.json"


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _measure(preset: str, mode: str, device: str, repeats: int, threads: int | None) -> dict:
    """One (preset, mode) measurement; run in a subprocess on CPU."""
    from dflib.models import DualFocus, DualFocusConfig

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)
    shape = CASES[preset]
    stack = torch.rand(shape, generator=g).to(dev)
    focus = torch.linspace(0.1, 1.5, shape[1]).expand(shape[0], shape[1]).contiguous().to(dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DualFocus(DualFocusConfig.preset(preset)).to(dev)

    def step() -> None:
        if mode == "forward":
            model.eval()
            with torch.no_grad():
                model(stack, focus)
        else:
            model.train()
            model.zero_grad(set_to_none=True)
            model(stack, focus)["depth"].sum().backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    rss0 = _rss_mib()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    step()  # warm-up; also the memory measurement
    first = time.perf_counter() - t0
    if dev.type == "cuda":
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"preset": preset, "mode": mode, "shape": list(shape),
            "parameters": sum(p.numel() for p in model.parameters()),
            "time_s_median": statistics.median(times), "time_s_min": min(times),
            "time_s_first_call": first, "repeats": repeats, "peak_mem_mib": round(peak_mib, 1)}


def _child(args: tuple, queue: mp.Queue) -> None:
    queue.put(_measure(*args))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--presets", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--quick", action="store_true", help="the tiny preset, one timed repeat; writes model_quick.json")
    p.add_argument("--out", type=Path, default=None, help="default benchmarks/results/model.json (model_quick.json with --quick)")
    a = p.parse_args(argv)
    if a.quick:
        a.presets, a.repeats = ["tiny"], 1
    a.out = a.out or benchmark_output(RESULTS, a.quick)
    rows = []
    ctx = mp.get_context("spawn")
    for preset in a.presets:
        for mode in ("forward", "forward_backward"):
            args = (preset, mode, a.device, a.repeats, a.threads)
            if a.device == "cpu":
                q: mp.Queue = ctx.Queue()
                proc = ctx.Process(target=_child, args=(args, q))
                proc.start()
                row = q.get()
                proc.join()
            else:
                row = _measure(*args)
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {
        "benchmark": "bench_model",
        "device": a.device if a.device != "cuda" else torch.cuda.get_device_name(),
        "cpu": cpu_model(),
        "command": " ".join(["python", *sys.argv]),
        "torch": torch.__version__,
        "threads": a.threads or torch.get_num_threads(),
        "peak_memory_method": ("torch.cuda.max_memory_allocated" if a.device == "cuda"
                               else "ru_maxrss rise over RSS before the first call (fresh subprocess)"),
        "note": "provisional: shared machine; compare timings only within one run",
        "results": rows,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
