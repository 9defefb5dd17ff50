"""Reading a recorded ablation ladder (``benchmarks/results/ablation*.json``, written by ``bench_ablation.py``).

A ladder's JSON holds the embedded test split at the top level and, for runs trained on the diverse data, the
runs' own distribution (``"in_distribution"``) and the held-out split (``"held_out"``) in the same layout:
``test_stacks``, ``variants`` (per-seed metrics) and ``paired`` (seed-paired differences with a 95 % interval).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ladder_parts", "ladder_problems", "ladders_problems", "pair_lines", "paired_ci", "seed_stack_noise",
           "seeds_for_halfwidth"]


def paired_ci(a: dict[int, float], b: dict[int, float]) -> dict:
    """Mean of a - b over the seeds both have (``{seed: value}``) and its 95 % Student-t interval.

    Returns ``{"mean", "ci95": [lo, hi], "seeds"}``; the interval is NaN with fewer than two seeds.
    """
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    d = np.asarray([a[s] - b[s] for s in seeds], float)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean": mean, "ci95": [float("nan"), float("nan")], "seeds": seeds}
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean": mean, "ci95": [mean - half, mean + half], "seeds": seeds}


def seed_stack_noise(d: np.ndarray) -> dict:
    """How much of the spread of per-seed mean differences is the training path, and how much the stacks.

    ``d [S, N]`` holds the paired differences a − b of S seeds on the same N stacks. With the two-way model
    d_si = μ + α_s + β_i + ε_si (seed, stack, and their interaction; one value per cell), the per-seed means
    spread by SD(α) and by the interaction's noise on a mean over N stacks, SD(ε)/√N. From the mean squares
    MS_seed = N · var(per-seed means) and MS_res (residuals after removing seed and stack means), the estimates
    are SD(ε)/√N = √(MS_res / N) and SD(α) = √(max(0, MS_seed − MS_res) / N). β, the stacks' own effect, is common
    to all seeds: it moves the mean over seeds but not its seed-paired interval.

    Returns ``{"seeds", "stacks", "between_seed_sd", "seed_sd", "stack_noise_sd"}`` (the last: ε's SD on one seed's
    mean over the N stacks; scoring k times as many stacks divides it by √k).
    """
    d = np.asarray(d, float)
    if d.ndim != 2 or min(d.shape) < 2:
        raise ValueError(f"d must be [seeds, stacks] with at least 2 of each, got shape {d.shape}")
    s, n = d.shape
    per_seed = d.mean(1)
    resid = d - per_seed[:, None] - d.mean(0)[None, :] + d.mean()
    ms_seed = n * per_seed.var(ddof=1)
    ms_res = float((resid ** 2).sum() / ((s - 1) * (n - 1)))
    return {"seeds": s, "stacks": n, "between_seed_sd": float(per_seed.std(ddof=1)),
            "seed_sd": float(np.sqrt(max(0.0, ms_seed - ms_res) / n)), "stack_noise_sd": float(np.sqrt(ms_res / n))}


def seeds_for_halfwidth(sd: float, halfwidth: float, max_seeds: int = 10_000) -> int:
    """The fewest seed pairs n (>= 2) whose 95 % Student-t interval, t(0.975, n - 1) · sd / √n, is at most
    ``halfwidth``, for per-seed differences that spread by ``sd`` (as :func:`paired_ci` computes it).

    Raises ValueError for a non-positive ``halfwidth`` or when more than ``max_seeds`` would be needed.
    """
    from scipy import stats

    if not halfwidth > 0 or not sd >= 0:
        raise ValueError(f"need halfwidth > 0 and sd >= 0, got halfwidth={halfwidth!r}, sd={sd!r}")
    for n in range(2, max_seeds + 1):
        if stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n) <= halfwidth:
            return n
    raise ValueError(f"more than {max_seeds} seed pairs would be needed for ±{halfwidth} at SD {sd}")


def ladder_parts(ladder: dict) -> list[tuple[str, dict, str]]:
    """``(label, part, metric)`` of every split a ladder was scored on, in the order embedded, in-distribution,
    held-out (the last two only where scored). The metric is RMSE in metres, or per focus span (``rmse_span``)
    on the held-out split, whose cameras' spans differ tenfold."""
    parts = [("embedded", ladder, "rmse"), ("in-dist.", ladder.get("in_distribution"), "rmse"),
             ("held-out", ladder.get("held_out"), "rmse_span")]
    return [(label, part, metric) for label, part, metric in parts if part is not None]


def ladder_problems(part: dict, min_stacks: int = 96, min_seeds: int = 3) -> list[str]:
    """What keeps one scored split of a ladder from being a sound measurement; empty when it is sound.

    Sound means: at least ``min_stacks`` test stacks, at least ``min_seeds`` seeds per variant with one RMSE
    per seed, and every paired difference's 95 % interval containing its mean.
    """
    problems = []
    if part["test_stacks"] < min_stacks:
        problems.append(f"{part['test_stacks']} test stacks < {min_stacks}")
    for name, v in part["variants"].items():
        if len(v["seeds"]) < min_seeds:
            problems.append(f"{name}: {len(v['seeds'])} seeds < {min_seeds}")
        if len(v["rmse"]) != len(v["seeds"]):
            problems.append(f"{name}: {len(v['rmse'])} RMSEs for {len(v['seeds'])} seeds")
    for name, d in part["paired"].items():
        lo, hi = d["ci95"]
        if not lo <= d["mean"] <= hi:
            problems.append(f"{name}: mean {d['mean']:+.4g} outside its interval [{lo:+.4g}, {hi:+.4g}]")
    return problems


def ladders_problems(ladders: dict[str, dict | None], **kwargs) -> list[str]:
    """:func:`ladder_problems` of every scored split of every recorded ladder (``{stem: JSON}``), each prefixed
    with its stem and split; ladders that are ``None`` (not run yet) are skipped. Empty when all are sound."""
    return [f"{stem} {label}: {problem}" for stem, ladder in ladders.items() if ladder is not None
            for label, part, _ in ladder_parts(ladder) for problem in ladder_problems(part, **kwargs)]


def pair_lines(ladders: dict[str, dict | None], pairs: dict[str, str]) -> list[str]:
    """One line per recorded ladder, split and pair: the seed-paired difference's mean and 95 % interval.

    ``pairs`` maps ``"a-b"`` to what the difference measures; the metric is each split's (:func:`ladder_parts`:
    metres, or per focus span on the held-out split). Ladders that are ``None`` are skipped, and so are the
    pairs a split lacks (a rung it did not score).
    """
    lines = []
    for stem, ladder in ladders.items():
        for label, part, metric in ladder_parts(ladder) if ladder is not None else []:
            for pair, what in pairs.items():
                d = part["paired"].get(pair + ("" if metric == "rmse" else f":{metric}"))
                if d is None:
                    continue
                lines.append(f"{stem:25s} {label:9s} {what:19s} {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, "
                             f"{d['ci95'][1]:+.4f}] ({'m' if metric == 'rmse' else 'of the span'}) over seeds {d['seeds']}")
    return lines
