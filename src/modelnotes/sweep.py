"""The accuracy sweep: many standard steps measured on the GPU, next to their predictions.

:func:`grid` lists the cases (every catalogue model that fits on one GPU, training and
inference, fp32 / amp-bf16 / bf16, three batch sizes, three sequence lengths, and for the
transformers training with and without activation checkpointing). :func:`run` measures
them with a few worker processes that share the GPU (``python -m modelnotes.measure --serve``),
side by side as long as the memory the predictor says they need fits, each capped to its
share; a case that did not fit in its share is measured again alone with the whole GPU.
:func:`compare` puts each measurement next to :func:`memory.predict` and next to two
published rules of thumb (:func:`accelerate_rule`, :func:`korthikanti_rule`).

>>> cases = grid()
>>> len(cases), sum(c.checkpointing for c in cases)
(657, 189)
>>> cases[0].label()
'vgg16 train fp32 adamw B=1'
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .measure import StepMeasurement, StepSpec

DTYPES = ("fp32", "amp-bf16", "bf16")
# batch sizes and sequence lengths per model: three each, chosen so that the largest
# training case of the model fits on an 80 GB GPU in fp32 (or runs out of memory in a way
# worth showing); sequence lengths stay within the learned positions
SHAPES: dict[str, tuple[tuple[int, ...], tuple[int, ...] | None]] = {
    "vgg16": ((1, 16, 64), None),
    "resnet18": ((1, 32, 128), None),
    "course-lstm": ((1, 64, 256), (10, 100, 1000)),
    "bert-base-uncased": ((1, 8, 16), (128, 256, 512)),
    "t5-small": ((1, 8, 16), (128, 256, 512)),
    "gpt2": ((1, 4, 8), (128, 512, 1024)),
    "gpt2-medium": ((1, 2, 4), (128, 512, 1024)),
    "gpt2-large": ((1, 2, 4), (128, 512, 1024)),
    "gpt2-xl": ((1, 2, 4), (128, 512, 1024)),
    "cs336-lm": ((1, 2, 4), (128, 512, 1024)),
}
TRANSFORMERS = ("bert-base-uncased", "t5-small", "gpt2", "gpt2-medium", "gpt2-large",
                "gpt2-xl", "cs336-lm")


def grid(models: tuple[str, ...] | None = None) -> list[StepSpec]:
    """Every case of the sweep, in a fixed order (model, mode, dtype, checkpointing, B, S).

    >>> [c.label() for c in grid(("resnet18",))][:2]
    ['resnet18 train fp32 adamw B=1', 'resnet18 train fp32 adamw B=32']
    """
    out = []
    for model in models or tuple(SHAPES):
        batches, seqs = SHAPES[model]
        for mode in ("train", "inference"):
            for dtype in DTYPES:
                for ckpt in ((False, True) if mode == "train" and model in TRANSFORMERS
                             else (False,)):
                    for B in batches:
                        for S in seqs or (None,):
                            out.append(StepSpec(model, mode=mode, dtype=dtype, batch=B, seq=S,
                                                checkpointing=ckpt))
    return out


@dataclass(frozen=True)
class Outcome:
    """One case of a sweep: the measurement, or why there is none."""

    spec: StepSpec
    measurement: StepMeasurement | None
    error: str | None
    seconds: float  # wall time of the worker on this case

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.spec.label(), "spec": self.spec.to_dict(),
                "measurement": self.measurement.to_dict() if self.measurement else None,
                "error": self.error, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        m = data.get("measurement")
        return cls(StepSpec.from_dict(data["spec"]), StepMeasurement.from_dict(m) if m else None,
                   data.get("error"), data.get("seconds", 0.0))


class _Server:
    """A ``python -m modelnotes.measure --serve`` process: one case at a time, each with its
    own cap on the GPU's memory."""

    def __init__(self):
        src = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [src, os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelnotes.measure", "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.case: tuple[StepSpec, int] | None = None  # what it is measuring, and its need
        self.started = 0.0

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)  # the process has ended

    def give(self, spec: StepSpec, need: int, fraction: float | None) -> None:
        self.case, self.started = (spec, need), time.perf_counter()
        self.process.stdin.write(json.dumps({"spec": spec.to_dict(), "fraction": fraction})
                                 + "\n")
        self.process.stdin.flush()

    def poll(self) -> Outcome | None | bool:
        """The outcome of its case when done; None while busy; False if the process died
        (its case then comes back as an error)."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return None
            if line is None:
                return False
            if line.startswith("{") and self.case is not None:
                spec = self.case[0]
                return Outcome(spec, StepMeasurement.from_json(line), None,
                               round(time.perf_counter() - self.started, 2))

    def failure(self) -> str:
        self.process.wait()
        err = self.process.stderr.read().strip().splitlines() or ["(no output)"]
        return f"the worker died (exit {self.process.returncode}): {err[-1]}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()


def _need(spec: StepSpec) -> int:
    """Bytes to set aside for *spec*: the prediction and a margin; without a prediction,
    three times the weights-only rule (a guess: a case beyond it is measured again alone)."""
    from . import memory
    from .params import count

    try:
        return int(memory.predict(spec).peak_bytes * 1.10) + 2**30
    except NotImplementedError:
        return 3 * accelerate_rule(count(spec.config).total, spec) + 2 * 2**30


def run(specs: list[StepSpec], *, workers: int = 6,
        progress: Callable[[str], None] | None = print,
        record: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Measure *specs* on the GPU; one :class:`Outcome` per spec, in the order of *specs*.

    *workers* processes share the GPU. Each case sets aside what the predictor says it will
    need, plus 10% and 1 GiB, and its worker is capped to that
    (``set_per_process_memory_fraction``), so cases run side by side as long as their needs
    add up to what the GPU has; the largest go first. A case without a prediction, or one
    that ran out of its share, is measured (again) alone with the whole GPU; only running out
    of memory there counts. *progress* gets one line and *record* the outcome of each case
    as it is final.
    """
    import torch

    total = len(specs)
    count = 0
    start = time.perf_counter()
    final: list[Outcome] = []

    def report(o: Outcome) -> None:
        nonlocal count
        count += 1
        final.append(o)
        if record is not None:
            record(o)
        if progress is None:
            return
        m = o.measurement
        what = (o.error if m is None else "OOM" if m.oom else
                f"not measured on {m.device}" if m.peak_bytes is None else
                f"peak {m.peak_bytes / 2**30:.2f} GiB")
        progress(f"[{count:>{len(str(total))}}/{total}] {o.spec.label()}: {what} "
                 f"({o.seconds:.1f} s; {time.perf_counter() - start:.0f} s so far)")

    cuda = torch.cuda.is_available()
    if cuda:
        capacity = torch.cuda.get_device_properties(0).total_memory
        # each worker's CUDA context and libraries live outside its allocator: about 0.6 GiB
        budget = capacity - (workers + 1) * 2**30
    else:
        capacity = budget = 2**62  # nothing to share: the CPU's readings are not peaks
    whole = budget  # a case that needs the whole GPU runs alone
    pending = []
    for spec in {s.to_json(): s for s in specs}.values():
        # cuDNN picks a convolution's algorithm by the memory the device has free (the
        # larger of cudaMemGetInfo and the allocator's largest cached block): beside other
        # workers it may pick one with a smaller workspace than it would alone. So the
        # CNNs are measured alone, as a fresh process on an idle GPU would be.
        alone = spec.family == "cnn"
        pending.append((spec, whole if alone else min(_need(spec), whole)))
    pending.sort(key=lambda item: -item[1])  # the largest first: the small ones fill in
    servers: list[_Server] = []
    free = budget
    try:
        while pending or any(s.case for s in servers):
            for server in list(servers):
                if server.case is None:
                    continue
                result = server.poll()
                if result is None:
                    continue
                spec, need = server.case
                server.case = None
                free += need
                if result is False:
                    report(Outcome(spec, None, server.failure(), 0.0))
                    servers.remove(server)
                elif result.measurement.oom and need < whole:
                    pending.insert(0, (spec, whole))  # again, alone with the whole GPU
                else:
                    report(result)
            for item in list(pending):
                spec, need = item
                if need > free:
                    continue
                idle = next((s for s in servers if s.case is None), None)
                if idle is None and len(servers) < workers:
                    idle = _Server()
                    servers.append(idle)
                if idle is None:
                    break
                pending.remove(item)
                free -= need
                fraction = None if need >= whole else min(1.0, need / capacity)
                idle.give(spec, need, fraction if cuda else None)
            time.sleep(0.05)
    finally:
        for server in servers:
            server.close()
    order = {s.to_json(): i for i, s in enumerate(specs)}
    return sorted(final, key=lambda o: order[o.spec.to_json()])


CACHE_VARIABLE = "MODELNOTES_MEASUREMENTS"  # a JSON-lines file shared by a build's pages
# the committed measurements ship with the package, so that a downloaded page finds them
COMMITTED = Path(__file__).resolve().parent / "data" / "sweep.json"


def measured(specs: list[StepSpec], *, progress: Callable[[str], None] | None = None,
             committed: str | os.PathLike | None = None) -> list[Outcome]:
    """The outcome of each of *specs*, measured once per build.

    With a GPU: read from the file named by ``$MODELNOTES_MEASUREMENTS`` (the book's build
    sets it, so that a case measured by one page is not measured again by another), and
    what is not there yet is measured now (:func:`run`) and added to it. Without a GPU (the
    preview): the committed sweep (*committed*, default the book's
    ``modelnotes/data/sweep.json``), and a case it lacks comes back with the error "not
    measured". Either way the result has one outcome per spec, in order.
    """
    import torch

    key = StepSpec.to_json
    if not torch.cuda.is_available():
        path = Path(committed) if committed is not None else COMMITTED
        known = {key(o.spec): o for o in load(path)[0]} if path.exists() else {}
        return [known.get(key(s)) or Outcome(s, None, "not measured (no GPU here, and not "
                                             "in the committed measurements)", 0.0)
                for s in specs]
    cache = os.environ.get(CACHE_VARIABLE)
    known = {}
    if cache and Path(cache).exists():
        for line in Path(cache).read_text().splitlines():
            o = Outcome.from_dict(json.loads(line))
            known[key(o.spec)] = o
    todo = list(dict.fromkeys(s for s in specs if key(s) not in known))
    if todo:
        log = Path(cache).open("a") if cache else None
        try:
            def record(o: Outcome) -> None:
                known[key(o.spec)] = o
                if log is not None:
                    log.write(json.dumps(o.to_dict()) + "\n")
                    log.flush()

            run(todo, progress=progress, record=record)
        finally:
            if log is not None:
                log.close()
    return [known[key(s)] for s in specs]


# ----- what the rules of thumb would have said --------------------------------------------

def accelerate_rule(parameters: int, spec: StepSpec) -> int:
    """``accelerate estimate-memory``: the weights in the step's dtype; training with Adam
    four times that (weights, gradients, two moments), nothing for activations.

    >>> accelerate_rule(1_000, StepSpec("gpt2", seq=8))
    16000
    """
    size = 2 if spec.dtype == "bf16" else 4
    return parameters * size * (4 if spec.mode == "train" else 1)


def korthikanti_rule(parameters: int, config: dict, spec: StepSpec) -> int | None:
    """Korthikanti et al. (2022): activations per transformer layer s·b·h·(34 + 5·a·s/h)
    bytes with 16-bit activations and no parallelism (2·s·b·h with full recomputation), on
    top of the weights, gradients and Adam state (16 bytes per parameter in mixed precision,
    8 in pure bf16). fp32 activations take twice the bytes. None outside training of a
    transformer, where the formula says nothing.

    >>> korthikanti_rule(0, {"n_embd": 4, "n_head": 2, "n_layer": 1}, StepSpec("gpt2", seq=8))
    3456
    """
    if spec.mode != "train" or spec.family not in ("encoder", "decoder", "encoder-decoder"):
        return None
    h = config.get("n_embd") or config.get("hidden_size") or config.get("d_model")
    a = config.get("n_head") or config.get("num_attention_heads") or config.get("num_heads")
    L = config.get("n_layer") or config.get("num_hidden_layers") or (
        config.get("num_layers", 0) + (config.get("num_decoder_layers")
                                       or config.get("num_layers", 0)))
    s, b = spec.seq, spec.batch
    per_layer = 2 * s * b * h if spec.checkpointing else s * b * h * (34 + 5 * a * s / h)
    if spec.dtype == "fp32":
        per_layer *= 2
    static = (8 if spec.dtype == "bf16" else 16) * parameters
    return int(static + L * per_layer)


@dataclass(frozen=True)
class Row:
    """A case, measured and predicted (bytes), with the error of the prediction."""

    label: str
    model: str
    mode: str
    dtype: str
    batch: int
    seq: int | None
    checkpointing: bool
    measured: int | None  # None: out of memory, or the run failed
    predicted: int | None  # None: the predictor does not cover the case
    phase: str | None  # predicted phase of the peak
    oom: bool
    accelerate: int
    korthikanti: int | None
    note: str = ""

    @property
    def error(self) -> float | None:
        """(predicted - measured) / measured."""
        if self.measured is None or self.predicted is None:
            return None
        return (self.predicted - self.measured) / self.measured


def compare(outcomes: list[Outcome]) -> list[Row]:
    """Each outcome next to :func:`memory.predict` and the two rules of thumb."""
    from . import memory
    from .params import count, named_config

    rows = []
    counts: dict[str, int] = {}
    for o in outcomes:
        s, m = o.spec, o.measurement
        name = s.model if isinstance(s.model, str) else str(config.get("model_type"))
        config = s.config
        if name not in counts:
            counts[name] = (m.parameters if m and m.parameters else
                            count(config).total)
        note = ""
        try:
            p = memory.predict(s)
            predicted, phase = p.peak_bytes, p.peak_phase
        except NotImplementedError as error:
            predicted, phase, note = None, None, str(error)
        measured = None
        if m is not None and not m.oom:
            measured = m.peak_bytes
        elif m is None:
            note = o.error or note
        rows.append(Row(s.label(), name, s.mode, s.dtype, s.batch, s.seq, s.checkpointing,
                        measured, predicted, phase, bool(m and m.oom),
                        accelerate_rule(counts[name], s),
                        korthikanti_rule(counts[name], config, s), note))
    return rows


def save(outcomes: list[Outcome], path: str | os.PathLike, provenance: dict) -> None:
    """Write a sweep and where it was measured as JSON (the form :func:`load` reads)."""
    Path(path).write_text(json.dumps({"provenance": provenance,
                                      "results": [o.to_dict() for o in outcomes]}) + "\n")


def load(path: str | os.PathLike) -> tuple[list[Outcome], dict]:
    """A sweep written by :func:`save`: the outcomes and their provenance."""
    data = json.loads(Path(path).read_text())
    return [Outcome.from_dict(d) for d in data["results"]], data["provenance"]


def main(argv: list[str] | None = None) -> int:
    """``python -m modelnotes.sweep --out FILE [--models M ...] [--workers N]``: run the
    sweep on this machine's GPU and save it (progress lines on stdout)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m modelnotes.sweep",
                                     description="Measure the accuracy sweep on the GPU.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="*", choices=sorted(SHAPES), metavar="MODEL")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("sweep: no CUDA GPU here: the sweep measures on the GPU", file=sys.stderr)
        return 2
    from .provenance import collect

    start = time.perf_counter()
    partial = args.out.with_suffix(".partial.jsonl")
    with partial.open("w") as log:
        def record(o: Outcome) -> None:
            log.write(json.dumps(o.to_dict()) + "\n")
            log.flush()

        outcomes = run(grid(tuple(args.models) if args.models else None), record=record)
    provenance = collect().as_dict()
    provenance["sweep_seconds"] = round(time.perf_counter() - start, 1)
    save(outcomes, args.out, provenance)
    failed = sum(o.measurement is None for o in outcomes)
    print(f"{len(outcomes)} cases in {provenance['sweep_seconds']} s, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
