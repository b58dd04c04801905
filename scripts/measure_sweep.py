"""Measure a list of standard steps, each in a fresh process, and write the results as JSON.

    python scripts/measure_sweep.py --out FILE.json [SPEC ...] [--preset NAME]
                                    [--specs FILE.json] [--repeat N] [--categories]
                                    [--device cpu|cuda] [--timeout S]

A SPEC is ``MODEL[,key=value...]`` (``gpt2,batch=8,seq=1024,dtype=amp-bf16``) or a JSON
object of :class:`modelnotes.measure.StepSpec` fields; ``--specs`` reads a JSON list of such
objects; ``--preset`` adds a named list (``smoke``, ``reference``). Two more keys set how one
case is run rather than what it is: ``repeat=N`` and ``categories=yes`` (as ``--repeat`` and
``--categories``, for that case alone). One progress line per case,
flushed as it finishes. The JSON file is rewritten after every case, so a sweep cut short
still leaves what it measured. It holds the provenance (device, driver, CUDA, torch,
transformers, date, commit) and, per case, the measurement, the seconds it took and, with
``--repeat N``, whether the N fresh processes gave byte-identical allocator readings.
Exit status 0 when every case gave a result (running out of memory is a result), 1 when
one failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from modelnotes.measure import (MeasurementError, StepMeasurement, StepSpec,  # noqa: E402
                                measure_step)

PRESETS = {
    # a few seconds each on a GPU: checks the harness end to end
    "smoke": ["course-lstm,batch=8,seq=20", "resnet18,batch=8", "gpt2,batch=2,seq=128"],
    # the cases Part IV starts from: one model through every option, then the catalogue;
    # 10 to 30 s each on an H100, most of it starting Python, torch and CUDA: about 5 min
    "reference": [
        "gpt2,batch=8,seq=1024,repeat=2,categories=yes",
        "gpt2,batch=8,seq=1024,optimizer=sgd",
        "gpt2,batch=8,seq=1024,optimizer=sgd-momentum",
        "gpt2,batch=8,seq=1024,dtype=amp-bf16",
        "gpt2,batch=8,seq=1024,dtype=amp-fp16",
        "gpt2,batch=8,seq=1024,dtype=bf16",
        "gpt2,batch=8,seq=1024,checkpointing=yes",
        "gpt2,batch=8,seq=1024,attn=eager",
        "gpt2,mode=inference,batch=8,seq=1024",
        "resnet18,batch=64,categories=yes",
        "bert-base-uncased,batch=8,seq=512",
        "t5-small,batch=8,seq=512",
        "course-lstm,batch=64,seq=100",
        "vgg16,batch=16",
        "gpt2-xl,batch=1,seq=1024,dtype=amp-bf16",
        "gpt2,batch=1024,seq=1024",  # far too large: memory fills up, then the OOM result
        "cs336-lm,batch=1,seq=1024,dtype=amp-bf16",
    ],
}
CASE_KEYS = ("repeat", "categories")  # how a case is run, not what it is

# the allocator's readings that a repeat must reproduce byte for byte
ALLOCATOR_FIELDS = ("weights_bytes", "before_bytes", "forward_peak_bytes", "after_forward_bytes",
                    "backward_peak_bytes", "after_backward_bytes", "optimizer_peak_bytes",
                    "after_bytes", "peak_bytes", "reserved_bytes", "reserved_after_bytes")


def differences(runs: list[StepMeasurement]) -> dict[str, list]:
    """Allocator fields whose value is not the same in every run, with the values."""
    out = {}
    for name in ALLOCATOR_FIELDS:
        values = [getattr(r, name) for r in runs]
        if len(set(values)) > 1:
            out[name] = values
    return out


def _case_options(values: dict, args: argparse.Namespace) -> dict:
    """Take ``repeat`` and ``categories`` out of *values*; the sweep's flags are defaults."""
    repeat = values.pop("repeat", args.repeat)
    categories = values.pop("categories", args.categories)
    if isinstance(categories, str):
        if categories.lower() not in ("yes", "no", "true", "false", "1", "0"):
            raise ValueError(f"categories must be yes or no, got {categories!r}")
        categories = categories.lower() in ("yes", "true", "1")
    try:
        repeat = int(repeat)
    except ValueError:
        raise ValueError(f"repeat must be an integer, got {repeat!r}") from None
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    return {"repeat": repeat, "categories": bool(categories)}


def parse_case(text: str, args: argparse.Namespace) -> tuple[StepSpec, dict]:
    """``MODEL[,key=value...]`` or a JSON object: the spec, and how to run it."""
    if text.strip().startswith("{"):
        return load_case(json.loads(text), args)
    keep, values = [], {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip() in CASE_KEYS:
            values[key.strip()] = value.strip()
        else:
            keep.append(part)
    options = _case_options(values, args)
    return StepSpec.parse(",".join(keep)), options


def load_case(data: dict, args: argparse.Namespace) -> tuple[StepSpec, dict]:
    values = dict(data)
    options = _case_options({k: values.pop(k) for k in CASE_KEYS if k in values}, args)
    return StepSpec.from_dict(values), options


def load_cases(args: argparse.Namespace) -> list[tuple[StepSpec, dict]]:
    texts: list[str] = []
    for preset in args.preset:
        texts += PRESETS[preset]
    texts += args.spec
    cases = [parse_case(t, args) for t in texts]
    for path in args.specs:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error.msg}") from None
        cases += [load_case(d, args) for d in data]
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="*", help="MODEL[,key=value...] or a JSON object")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--preset", action="append", default=[], choices=sorted(PRESETS))
    parser.add_argument("--specs", action="append", default=[], help="a JSON list of specs")
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes per case")
    parser.add_argument("--categories", action="store_true",
                        help="add MemTracker's split (a third step) to every case")
    parser.add_argument("--device", help="cuda (default when there is one) or cpu")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per process")
    args = parser.parse_args(argv)
    try:
        cases = load_cases(args)
    except (ValueError, OSError) as error:
        print(f"measure_sweep: {error}", file=sys.stderr)
        return 2
    if not cases or args.repeat < 1:
        print("measure_sweep: nothing to measure (give SPECs, --preset or --specs)",
              file=sys.stderr)
        return 2

    from modelnotes.provenance import collect

    document = {"provenance": collect().as_dict(),
                "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "command": " ".join(["scripts/measure_sweep.py", *(argv or sys.argv[1:])]),
                "results": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    failed = 0
    width = len(str(len(cases)))
    for number, (spec, options) in enumerate(cases, 1):
        start = time.perf_counter()
        entry: dict = {"label": spec.label(), "spec": spec.to_dict(), **options}
        try:
            runs = [measure_step(spec, categories=options["categories"], device=args.device,
                                 timeout=args.timeout) for _ in range(options["repeat"])]
        except MeasurementError as error:
            failed += 1
            entry["error"] = str(error)
            line = f"FAILED: {error}"
        else:
            entry["measurement"] = runs[0].to_dict()
            if len(runs) > 1:
                entry["differences"] = differences(runs)
                entry["identical"] = not entry["differences"]
            line = runs[0].summary().split(": ", 1)[1]
            if len(runs) > 1:
                line += "; repeats " + ("identical" if entry["identical"] else
                                        f"DIFFER in {', '.join(entry['differences'])}")
            tracked = runs[0].categories
            if tracked and tracked.get("ratio"):
                line += f"; MemTracker/allocator {tracked['ratio']:.3f}"
            elif tracked and tracked.get("error"):
                line += f"; MemTracker failed: {tracked['error']}"
        entry["seconds"] = round(time.perf_counter() - start, 1)
        document["results"].append(entry)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(document, indent=1) + "\n")
        os.replace(tmp, args.out)  # never a half-written file
        print(f"[{number:>{width}}/{len(cases)}] {spec.label()}: {line} ({entry['seconds']} s)",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
