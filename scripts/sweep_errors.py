"""Predicted vs measured for a saved sweep, grouped by model, mode, dtype and checkpointing.

    python scripts/sweep_errors.py [SWEEP.json] [--model M ...] [--cases]

Default file: src/modelnotes/data/sweep.json (the committed H100 sweep). ``--cases`` lists every
case of the chosen models with its phase readings; the summary line gives the number of
cases predicted, the largest and the median absolute error.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from modelnotes import memory, sweep  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=ROOT / "src/modelnotes/data/sweep.json")
    parser.add_argument("--model", nargs="*")
    parser.add_argument("--cases", action="store_true")
    args = parser.parse_args()
    outcomes, _ = sweep.load(args.path)
    if args.model:
        outcomes = [o for o in outcomes if o.spec.model in args.model]
    rows = sweep.compare(outcomes)
    groups = collections.defaultdict(list)
    for row in rows:
        groups[(row.model, row.mode, row.dtype, row.checkpointing)].append(row)
    for key, group in groups.items():
        errors = [r.error for r in group if r.error is not None]
        name = " ".join(str(k) for k in key[:3]) + (" ckpt" if key[3] else "")
        if not errors:
            print(f"{name:40} no prediction: {group[0].note[:70]}")
            continue
        worst = max(errors, key=abs)
        print(f"{name:40} n={len(errors)} worst {worst:+.2%} best {min(errors, key=abs):+.2%}")
    if args.cases:
        for o, row in zip(outcomes, rows):
            m = o.measurement
            line = f"{row.label:48} measured {row.measured} predicted {row.predicted}"
            if row.error is not None:
                line += f" ({row.error:+.2%}, {row.phase})"
            print(line)
            if m is not None and row.predicted is not None:
                p = memory.predict(o.spec)
                for phase in ("before", "forward_peak", "after_forward", "backward_peak",
                              "after_backward", "optimizer_peak"):
                    got, want = getattr(m, phase + "_bytes"), getattr(p, phase + "_bytes")
                    if got is not None and want is not None:
                        print(f"    {phase:15} measured {got:>14,} predicted {want:>14,} "
                              f"diff {want - got:>+14,}")
    errors = [abs(r.error) for r in rows if r.error is not None]
    if errors:
        errors.sort()
        print(f"{len(errors)} of {len(rows)} cases predicted; worst {errors[-1]:.2%}, "
              f"median {errors[len(errors) // 2]:.2%}; "
              f"{sum(e > 0.05 for e in errors)} above 5%, {sum(e > 0.02 for e in errors)} above 2%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
