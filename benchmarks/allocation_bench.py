"""Ranking, tiers and reward allocation of a million entities: the Claim-object path against the columns.

One population: heavy-tailed scores (Pareto, alpha 1.5) over three tiers, a cap that a few hundred reach
and a min_grant that about 30 % of the entities fall below (issue #21). Timed, each `--reps` times, median:

- `allocate (REV)`: `allocate()` as it was at git revision REV (default: the last one before issue #21),
  on Claim objects built beforehand (not timed); skipped with `--no-baseline` or outside a git checkout.
- `allocate (now)`: today's `allocate()` on the same Claims (an adapter over the columns core).
- `rank_tier_allocate`: tiers, ranks and grants from the columns (polars Series), all in one call.

Every variant must give the same grants; the script checks it and stops otherwise.

    python benchmarks/allocation_bench.py [--n 1000000] [--reps 3] [--baseline REV | --no-baseline]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BASELINE = "01c96c8"  # the last commit before issue #21
POOL, CAP, MIN_GRANT = 20_000_000, 4_000, 5


def population(n: int, seed: int) -> tuple[Any, Any]:
    """Keys (shuffled, as a polars Series) and rank_by values (float64)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    values = np.round((rng.pareto(1.5, n) + 1) * 10, 6)
    keys = pl.Series("key", [f"m{i:07d}" for i in rng.permutation(n)], dtype=pl.Utf8)
    return keys, values


def load_baseline(rev: str) -> types.ModuleType | None:
    """The allocation module as it was at `rev`, or None when git cannot show it."""
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:chuanliu_cli/scoring/allocation.py"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("allocation_baseline")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:allocation.py", "exec"), module.__dict__)
    return module


def timed(fn: Callable[[], Any], reps: int) -> tuple[tuple[float, float], Any]:
    """Median wall and CPU seconds of `reps` runs (CPU: this process, all threads), and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(reps):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return (statistics.median(walls), statistics.median(cpus)), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entities (default 1,000,000)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per variant (default 3)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--baseline", default=BASELINE, help=f"git revision of the old allocate ({BASELINE})")
    parser.add_argument("--no-baseline", action="store_true", help="time only today's code")
    args = parser.parse_args(argv)

    import numpy as np

    from chuanliu_cli.rules.model import Loc, Reward, Tier
    from chuanliu_cli.scoring import allocation

    loc = Loc("bench", 1, 1)
    tiers = [Tier("S", 60, 3, loc), Tier("A", 25, "1.5", loc), Tier("B", 10, 1, loc)]  # type: ignore[arg-type]
    reward = Reward(POOL, cap=CAP, min_grant=MIN_GRANT)
    keys, values = population(args.n, args.seed)
    eligible = np.ones(args.n, dtype=bool)

    rows: list[tuple[str, tuple[float, float]]] = []
    seconds, new = timed(
        lambda: allocation.rank_tier_allocate(keys, values, eligible, tiers, reward), args.reps
    )
    rows.append(("rank_tier_allocate (columns)", seconds))
    grants = new.grant.to_list()

    key_list = keys.to_list()
    mult = {t.name: t.multiplier for t in tiers}
    tier_names = new.tier.to_list()

    def claims_of(module: Any) -> list[Any]:
        return [
            module.Claim(k, v, mult[t] if t is not None else None, True)
            for k, v, t in zip(key_list, values.tolist(), tier_names, strict=True)
        ]

    variants: list[tuple[str, Any]] = [("allocate (now)", allocation)]
    old = None if args.no_baseline else load_baseline(args.baseline)
    if old is not None:
        variants.insert(0, (f"allocate ({args.baseline})", old))
    elif not args.no_baseline:
        print(f"baseline {args.baseline} not available: timing today's code only", file=sys.stderr)
    for label, module in variants:
        claims = claims_of(module)

        def run(module: Any = module, claims: list[Any] = claims) -> Any:
            return module.allocate(claims, POOL, CAP, MIN_GRANT)

        seconds, result = timed(run, args.reps)
        if [result.grants[k].grant for k in key_list] != grants or result.dropped != new.dropped:
            print(f"{label} disagrees with rank_tier_allocate", file=sys.stderr)
            return 1
        rows.append((label, seconds))

    print(f"{args.n:,} eligible entities, pool {POOL:,}, cap {CAP:,}, min_grant {MIN_GRANT:,}")
    capped = sum(1 for note in new.grant_note.to_list() if note == allocation.NOTE_CAPPED)
    print(
        f"dropped below min_grant: {len(new.dropped):,} ({len(new.dropped) / args.n:.0%}), capped: {capped:,}"
    )
    print(f"median of {args.reps} runs, seconds\n")
    width = max(len(label) for label, _ in rows)
    print(f"{'variant':<{width}}     wall      cpu")
    for label, (wall, cpu) in rows:
        print(f"{label:<{width}}  {wall:7.2f}  {cpu:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
