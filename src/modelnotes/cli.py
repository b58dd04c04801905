"""The ``modelnotes`` command.

    modelnotes list                      the catalogue
    modelnotes summary NAME [--depth D]  torchinfo summary of a catalogue model
    modelnotes provenance [--json]       the device and versions this machine would measure with
    modelnotes params NAME|CONFIG.json [--json] [--no-check]
                                         exact parameter count from the config, by component
    modelnotes formats [NAME] [--json]   number formats: range, precision, bit layout, values
    modelnotes memory NAME|CONFIG.json [--mode M] [--dtype D] [--optimizer O] --batch B
                      [--seq S] [--checkpointing] [--attn A] [--json] [--measure]
                                         predicted (and measured) GPU memory of a standard step

Errors are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from . import __version__


class CommandError(Exception):
    """A user's mistake (bad name, file or config): one line on stderr, exit code 2."""


def _cmd_list(args: argparse.Namespace) -> int:
    from .catalogue import CATALOGUE, names

    width = max(map(len, names()))
    for name in names():
        entry = CATALOGUE[name]
        print(f"{name:<{width}}  {entry.family:<15}  {entry.description}")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    import torchinfo

    from .catalogue import build, unique_parameter_count

    model = build(args.name, device="meta")
    print(torchinfo.summary(model, depth=args.depth, verbose=0,
                            col_names=("num_params",), row_settings=("var_names",)))
    print(f"Unique parameters (tied weights once): {unique_parameter_count(model):,}")
    return 0


def _cmd_provenance(args: argparse.Namespace) -> int:
    from .provenance import collect

    info = collect()
    print(json.dumps(info.as_dict(), indent=2) if args.json else info.sentence())
    return 0


def _is_config_path(target: str) -> bool:
    import os

    return target.endswith(".json") or os.sep in target or os.path.isfile(target)


def _cmd_params(args: argparse.Namespace) -> int:
    # The formulas are plain Python: torch is imported only by the meta-device check.
    from .params import (MissingFieldError, UnsupportedModelError, count, load_config,
                         named_config, pytorch_count, report)

    try:
        if _is_config_path(args.target):
            config = load_config(args.target)  # ValueError: one-line reason
        else:
            config = named_config(args.target)
        tree = count(config)
        info = report(config, check=False)
    except MissingFieldError as error:
        raise CommandError(f"{args.target}: {error.args[0]}") from None
    except (UnsupportedModelError, ValueError) as error:
        raise CommandError(str(error)) from None
    except (TypeError, KeyError, AttributeError, IndexError) as error:  # a field of the wrong shape
        raise CommandError(f"{args.target}: a config field has the wrong type or shape "
                           f"({type(error).__name__}: {error})") from None
    info["model"] = args.target

    if args.check:
        try:
            pt = pytorch_count(config)
        except MissingFieldError as error:
            raise CommandError(f"{args.target}: meta-device check: {error.args[0]}") from None
        except Exception as error:  # the real module would not build from this config
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise CommandError(f"{args.target}: meta-device check failed: "
                               f"{type(error).__name__}: {message} "
                               "(--no-check skips it)") from None
        info["pytorch"], info["difference"] = pt, info["total"] - pt

    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(_params_text(info, tree))
    return 0 if not info["difference"] else 1


def _params_text(info: dict, tree) -> str:
    moe = info["active"] != info["total"]
    rows = list(tree.rows())
    labels = ["  " * depth + name for depth, name, *_ in rows]
    width = max(len("component"), *map(len, labels))
    head = f"{'component':<{width}}  {'copies':>6}  {'parameters':>17}"
    if moe:
        head += f"  {'active':>17}"
    lines = [f"{info['model']} ({info['architecture']})", "", head, "-" * len(head)]
    for label, (_, _, times, total, active) in zip(labels, rows):
        line = f"{label:<{width}}  {'x' + str(times) if times != 1 else '':>6}  {total:>17,}"
        if moe:
            line += f"  {active:>17,}"
        lines.append(line)
    lines.append("")

    total = info["total"]
    summary = [("Total parameters", total, "")]
    if moe:
        summary.append(("Active per token", info["active"],
                        f"{100 * info['active'] / total:.1f}% of total"))
    summary += [("Embedding", info["embedding"], ""),
                ("Non-embedding", info["non_embedding"], "")]
    for label, n, note in summary:
        lines.append(f"{label + ':':<19}{n:>17,}  ({_short(n)}){'  ' + note if note else ''}")
    lines.append("")
    lines.append("Weights in memory (elements only):")
    large = info["bytes"]["fp32"] >= 1e9  # MB for small models, so they do not read 0.00 GB
    scale, binary, unit = (1e9, 2**30, "GB") if large else (1e6, 2**20, "MB")
    for dtype, n in info["bytes"].items():
        lines.append(f"  {dtype:<5}{n / scale:>14,.2f} {unit}{n / binary:>14,.2f} {unit[0]}iB")
    if info["pytorch"] is not None:
        lines.append("")
        lines.append(f"PyTorch (meta device): {info['pytorch']:,}, "
                     f"difference {info['difference']:,}")
    return "\n".join(lines)


def _short(n: int) -> str:
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _cmd_formats(args: argparse.Namespace) -> int:
    # numpy only: the formats module never imports torch.
    from .formats import BLOCK_FORMATS, FORMATS, UnknownFormatError, get

    try:
        chosen = list(FORMATS.values()) if args.name is None else [get(args.name)]
    except UnknownFormatError as error:
        raise CommandError(str(error)) from None
    if args.json:
        detail = args.name is not None
        print(json.dumps([_format_json(f, detail) for f in chosen], indent=2, allow_nan=False))
    elif args.name is not None:
        print(_format_text(chosen[0]))
    else:
        print(_formats_table(list(FORMATS.values()), list(BLOCK_FORMATS.values())))
    return 0


def _format_json(fmt, detail: bool) -> dict:
    info = fmt.to_dict()
    if detail and fmt.kind != "block" and fmt.total_bits <= 8:  # strict JSON has no NaN or inf: those as strings
        info["values"] = [v if math.isfinite(v) else str(v) for v in fmt.values()]
    return info


def _power_of_two(x: float | None) -> str:
    """min normal, min subnormal and eps are always powers of two: 2^-6 reads better."""
    if x is None:
        return "-"
    return "1" if x == 1 else f"2^{math.frexp(x)[1] - 1}"


def _number(x: float | int | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return str(x)
    if x == int(x) and abs(x) < 1e7:
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


def _count(fmt) -> str:
    """Finite codes; fp64's 2^64 - 2^53 reads better than twenty digits."""
    taken = (1 << fmt.total_bits) - fmt.finite_values  # NaN and inf codes
    if fmt.finite_values > 10**10 and taken & (taken - 1) == 0:
        return f"2^{fmt.total_bits} - 2^{taken.bit_length() - 1}"
    return f"{fmt.finite_values:,}"


def _formats_table(formats: list, blocks: list) -> str:
    head = ["format", "bits", "E", "M", "bias", "max", "min normal", "min subnormal", "eps",
            "finite values"]
    rows = []
    for f in formats:
        if f.kind == "int":
            rows.append([f.name, f.total_bits, "-", "-", "-", _number(f.max), "-", "-", "1",
                         f"{f.finite_values:,}"])
        else:
            rows.append([f.name, f.total_bits, f.exponent_bits, f.mantissa_bits, f.bias,
                         _number(f.max), _power_of_two(f.min_normal),
                         _power_of_two(f.min_subnormal), _power_of_two(f.eps),
                         _count(f)])
    lines = _columns(head, rows, right={1, 2, 3, 4, 9})
    lines.append("")
    block_rows = [[b.name, b.element.name, b.scale.name, b.block_size,
                   f"{b.bits_per_element:g}" + (" + 32 per tensor" if b.tensor_scale else "")]
                  for b in blocks]
    lines += _columns(["block format", "element", "scale", "block", "bits per element"],
                      block_rows, right={3})
    lines += ["", "finite values counts codes (+0 and -0 are two).",
              "`modelnotes formats NAME` draws a format's bits and lists its values."]
    return "\n".join(lines)


def _columns(head: list[str], rows: list[list], right: set[int]) -> list[str]:
    cells = [head] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    lines = []
    for row in cells:
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return lines


def _format_text(fmt) -> str:
    from .formats import SPECIAL_CONVENTIONS

    if fmt.kind == "block":
        return _block_text(fmt)
    if fmt.kind == "int":
        return "\n".join([
            f"{fmt.name}: {fmt.description}", "",
            f"bits    {fmt.layout}  (two's complement: the top bit weighs "
            f"-{1 << (fmt.total_bits - 1)})",
            f"range   {fmt.min} to {fmt.max}, step 1: {fmt.finite_values:,} values",
            "", "Not a float: no exponent, no subnormals, no infinities, no NaN. Quantizing",
            f"to {fmt.name} means choosing a scale that maps a tensor's range onto this grid.",
            "", "Values: " + (" ".join(map(str, sorted(fmt.values()))) if fmt.total_bits <= 4
                              else f"every integer from {fmt.min} to {fmt.max}")])

    E, M, bias = fmt.exponent_bits, fmt.mantissa_bits, fmt.bias
    lines = [f"{fmt.name}: {fmt.description}"]
    also = [f"torch.{fmt.torch_name}" if fmt.torch_name else "",
            f"ml_dtypes.{fmt.ml_dtypes_name}" if fmt.ml_dtypes_name else ""]
    if any(also):
        lines.append("  as " + ", ".join(a for a in also if a))
    sign = "(-1)^S * " if fmt.signed else ""
    top = fmt.max_code >> M  # the largest exponent field of a finite value
    parts = "1 sign + " if fmt.signed else "no sign, "
    lines += ["", f"bits           {fmt.layout}  ({parts}{E} exponent + {M} mantissa = "
                  f"{fmt.total_bits} bits; bias {bias})"]
    if fmt.subnormals:
        normal, subnormal = f"{sign}2^(E-{bias}) * 1.M", f"{sign}2^{1 - bias} * 0.M"
        width = max(len(normal), len(subnormal))
        lines += [f"value          {normal:<{width}}  for E = 1..{top}",
                  f"               {subnormal:<{width}}  for E = 0 (zero and subnormals)"]
    else:
        lines += [f"value          {sign}2^(E-{bias})  for E = 0..{top}"]
    lines.append(f"convention     {fmt.special}: {SPECIAL_CONVENTIONS[fmt.special]}")
    lines.append("")

    def exact(x: float) -> str:
        text = repr(x) if len(repr(x)) <= 12 else f"{x:.6g}"
        return text.removesuffix(".0") + ("" if x in (0, 1) or math.frexp(x)[0] != 0.5
                                           else f" = {_power_of_two(x)}")

    def row(label: str, x: float) -> list[str]:
        code = fmt.encode(x)
        # fp64's 64 bits would double the line: its hex code says the same
        return [label, exact(x), fmt.bits(code) if fmt.total_bits <= 32 else "",
                _hex(fmt, code)]

    table = [row("max", fmt.max), row("min normal", fmt.min_normal)]
    if fmt.min_subnormal is not None:
        table.append(row("min subnormal", fmt.min_subnormal))
    table.append(["eps", exact(fmt.eps), "", ""])
    value_width = max(len(r[1]) for r in table)
    bits_width = max(len(r[2]) for r in table)
    for label, value, bits, code in table:
        lines.append(f"{label:<15}{value:<{value_width}}  {bits:<{bits_width}}  {code}".rstrip())
    lines.append(f"finite values  {fmt.finite_values:,} of {1 << fmt.total_bits:,} codes")
    lines += [""] + fmt.special_values()
    if fmt.total_bits <= 8 and M == 0:  # E8M0: the rule is shorter than 255 numbers
        lines += ["", f"Values: code c is 2^(c - {bias}), from {_hex(fmt, 0)} = 2^{-bias} through "
                      f"{_hex(fmt, bias)} = 1 to {_hex(fmt, fmt.max_code)} = "
                      f"2^{fmt.max_exponent}"]
    elif fmt.total_bits <= 8:
        lines += [""] + _value_grid(fmt)
    return "\n".join(lines)


def _hex(fmt, code: int) -> str:
    return f"0x{code:0{(fmt.total_bits + 3) // 4}X}"


def _value_grid(fmt) -> list[str]:
    """The values of codes 0 up to the sign bit, eight to a row (4 significant digits)."""
    values = fmt.values()
    half = len(values) // 2 if fmt.signed else len(values)
    if fmt.signed:
        negative = f"code + {_hex(fmt, half)} is its negative" + (
            f" (and {_hex(fmt, half)} is NaN)" if fmt.special == "fnuz" else "")
        lines = [f"Values of codes {_hex(fmt, 0)}-{_hex(fmt, half - 1)}, 4 significant digits "
                 f"(exact with --json);", f"{negative}:"]
    else:
        lines = ["Values of every code, 4 significant digits (exact with --json):"]
    for start in range(0, half, 8):
        cells = [("NaN" if math.isnan(v) else _number(v)).rjust(9)
                 for v in values[start:start + 8]]
        lines.append(f"{_hex(fmt, start)}  " + " ".join(cells))
    return lines


def _block_text(fmt) -> str:
    element, scale = fmt.element, fmt.scale
    lines = [f"{fmt.name}: {fmt.description}", "",
             f"element        {element.name}  ({element.layout}, max {_number(element.max)})"]
    if fmt.tensor_scale:
        lines += [f"block scale    {scale.name} per {fmt.block_size} elements: block amax / "
                  f"({_number(element.max)} * tensor scale), rounded to nearest even",
                  f"tensor scale   fp32, one per tensor: amax / ({_number(scale.max)} * "
                  f"{_number(element.max)})",
                  f"bits/element   {fmt.bits_per_element:g} = {element.total_bits} + "
                  f"{scale.total_bits}/{fmt.block_size}, plus 32 bits per tensor"]
    else:
        lines += [f"block scale    {scale.name} per {fmt.block_size} elements: "
                  f"2^(floor(log2(block amax)) - {element.max_exponent})  (OCP MX v1.0)",
                  f"bits/element   {fmt.bits_per_element:g} = {element.total_bits} + "
                  f"{scale.total_bits}/{fmt.block_size}"]
    lines += ["value          element * block scale" + (" * tensor scale"
                                                        if fmt.tensor_scale else "")]
    return "\n".join(lines)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _memory_step(args: argparse.Namespace) -> tuple[dict, str]:
    """The config and the checked options of ``modelnotes memory`` (no torch needed)."""
    from .memory import TORCH_FAMILIES, position_limit
    from .params import MissingFieldError, UnsupportedModelError, load_config, named_config

    try:
        config = (load_config(args.target) if _is_config_path(args.target)
                  else named_config(args.target))
    except (MissingFieldError, UnsupportedModelError, ValueError, KeyError) as error:
        raise CommandError(str(error.args[0] if error.args else error)) from None
    family = TORCH_FAMILIES.get(config.get("model_type"), "transformer")
    if family == "cnn" and args.seq is not None:
        raise CommandError(f"{args.target} takes 3x224x224 images: --seq does not apply")
    if family != "cnn" and args.seq is None:
        raise CommandError(f"{args.target} needs --seq (the sequence length)")
    limit = position_limit(config)
    if limit is not None and args.seq > limit:
        raise CommandError(f"--seq {args.seq} is longer than {args.target}'s {limit} "
                           "learned positions")
    if args.mode == "inference" and args.optimizer is not None:
        raise CommandError("inference takes no --optimizer")
    if args.checkpointing and (family != "transformer" or args.mode == "inference"):
        raise CommandError("--checkpointing applies to training a transformer")
    if args.attn is not None and family != "transformer":
        raise CommandError(f"{args.target} has no attention: --attn does not apply")
    shard = args.shard or ("none" if args.gpus == 1 else None)
    if shard is None:
        raise CommandError(f"--gpus {args.gpus} needs --shard ddp, fsdp or fsdp-no-reshard")
    if shard == "none" and args.gpus > 1:
        raise CommandError("--shard none is one GPU: use ddp, fsdp or fsdp-no-reshard with "
                           f"--gpus {args.gpus}")
    if shard != "none" and args.mode == "inference":
        raise CommandError("--shard applies to training (DDP and FSDP2 split a training step)")
    if shard != "none" and args.measure:
        raise CommandError("--measure runs one process on one GPU; measure a sharded step "
                           "with torchrun: scripts/measure_distributed.py")
    args.shard = shard
    return config, family


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:,.2f} GiB"


def _cmd_memory(args: argparse.Namespace) -> int:
    from . import memory

    config, family = _memory_step(args)
    if args.measure:
        import torch  # only --measure needs it

        if not torch.cuda.is_available():
            raise CommandError("--measure needs a CUDA GPU, and this machine has none "
                               "(without --measure the prediction needs no GPU)")
    optimizer = args.optimizer or ("adamw" if args.mode == "train" else None)
    attn = args.attn or ("sdpa" if family == "transformer" else None)
    try:
        if args.shard == "none":
            p = memory.predict(config, mode=args.mode, dtype=args.dtype, optimizer=optimizer,
                               batch=args.batch, seq=args.seq,
                               checkpointing=args.checkpointing, attn=attn)
        else:
            from .sharding import predict_sharded

            p = predict_sharded(config, gpus=args.gpus, shard=args.shard.split("-")[0],
                                reshard_after_forward=args.shard != "fsdp-no-reshard",
                                dtype=args.dtype, optimizer=optimizer, batch=args.batch,
                                seq=args.seq, checkpointing=args.checkpointing, attn=attn)
    except NotImplementedError as error:
        raise CommandError(f"no prediction for this case: {error}") from None
    label = p.label.replace(f"config:{config.get('model_type')}", args.target, 1)
    out = {"model": args.target, "label": label, "mode": args.mode, "dtype": args.dtype,
           "optimizer": optimizer, "batch": args.batch, "seq": args.seq,
           "checkpointing": args.checkpointing, "attn": attn,
           "gpus": args.gpus, "shard": args.shard,
           "peak_bytes": p.peak_bytes, "peak_phase": p.peak_phase,
           "components": p.components, "phases": p.phase_bytes()}
    if args.measure:
        from .measure import MeasurementError, StepSpec, measure_step

        spec = StepSpec(args.target, mode=args.mode, dtype=args.dtype, optimizer=optimizer,
                        batch=args.batch, seq=args.seq, checkpointing=args.checkpointing,
                        attn=attn)
        print(f"measuring {label} in a fresh process on the GPU ...", file=sys.stderr)
        try:
            m = measure_step(spec)
        except MeasurementError as error:
            raise CommandError(str(error)) from None
        out["measured_oom"] = m.oom
        out["measured_peak_bytes"] = m.peak_bytes
        out["measured_device"] = m.device
        if m.oom:
            out["measured_oom_phase"] = m.oom_phase
        else:
            out["measured_phases"] = {k: v for k, v in (
                ("forward", m.forward_peak_bytes), ("backward", m.backward_peak_bytes),
                ("optimizer", m.optimizer_peak_bytes)) if v is not None}
            out["measured_reserved_bytes"] = m.reserved_bytes
            out["error"] = (p.peak_bytes - m.peak_bytes) / m.peak_bytes
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    total = p.peak_bytes
    where = "" if args.shard == "none" else f" per GPU (rank 0 of {args.gpus})"
    lines = [f"{label}: predicted peak{where} {_gib(total)} ({total:,} bytes), in the "
             f"{p.peak_phase}", "", "At the peak:"]
    width = max(12, *map(len, p.components))
    for name, value in p.components.items():
        lines.append(f"  {name:<{width}} {_gib(value):>14}  {value / total:6.1%}")
    lines += ["", "Peak of each phase:"]
    lines += [f"  {name:<{width}} {_gib(value):>14}"
              for name, value in p.phase_bytes().items()]
    if args.measure:
        lines.append("")
        if out["measured_oom"]:
            lines.append(f"Measured on {out['measured_device']}: out of memory in the "
                         f"{out['measured_oom_phase']}")
        else:
            lines.append(f"Measured on {out['measured_device']}: peak "
                         f"{_gib(out['measured_peak_bytes'])} "
                         f"({out['measured_peak_bytes']:,} bytes); prediction "
                         f"{out['error']:+.2%}")
    print("\n".join(lines))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (and exit code 2, as argparse's)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="modelnotes",
        description="How neural networks are put together and what they cost: the package "
                    "behind the modelnotes book.")
    top.add_argument("--version", action="version", version=f"modelnotes {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")

    listing = commands.add_parser("list", help="list the catalogue of models")
    listing.set_defaults(run=_cmd_list)

    summary = commands.add_parser("summary", help="print a catalogue model's structure "
                                  "(built on the meta device: no memory, no download)")
    summary.add_argument("name", metavar="NAME", help="a catalogue name (see `modelnotes list`)")
    summary.add_argument("--depth", type=int, default=2, help="module depth to show (default 2)")
    summary.set_defaults(run=_cmd_summary)

    provenance = commands.add_parser("provenance", help="device, driver and library versions")
    provenance.add_argument("--json", action="store_true", help="print a JSON object")
    provenance.set_defaults(run=_cmd_provenance)

    params = commands.add_parser(
        "params", help="exact parameter count from a config, by component",
        description="Exact parameter count in closed form from the config alone, broken down "
                    "by component, with active parameters (MoE), embedding vs non-embedding and "
                    "the bytes the weights take in fp32/bf16/fp8/fp4. By default the count is "
                    "checked against the real module built on PyTorch's meta device (no memory, "
                    "no download); exit code 1 if the two differ.")
    params.add_argument("target", metavar="NAME|CONFIG.json",
                        help="a catalogue or named model (llama4-scout, deepseek-v3, qwen3-0.6b, "
                             "grok-1, ...), a torchvision VGG/ResNet/ResNeXt name, or a Hugging "
                             "Face style config.json (model_type; architectures picks the head)")
    params.add_argument("--json", action="store_true", help="print one JSON object")
    params.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the meta-device count (and the torch import): formulas only")
    params.set_defaults(run=_cmd_params)

    formats = commands.add_parser(
        "formats", help="number formats: range, precision, bit layout and every value",
        description="Number formats from fp64 to fp4, the E8M0 scale, int8/int4 and the block "
                    "formats (MX, NVFP4). Every property is computed from the bit fields. "
                    "Without NAME, a table of all of them; with NAME, that format's bit layout, "
                    "special values and, for 8 bits or fewer, every value.")
    formats.add_argument("name", metavar="NAME", nargs="?",
                         help="a format: fp32, bf16, fp8-e4m3fn, fp4-e2m1, e8m0, int8, mxfp4, "
                              "nvfp4, ... (torch and ml_dtypes names work too)")
    formats.add_argument("--json", action="store_true",
                         help="print a JSON list (one element with NAME; with NAME and 8 bits "
                              "or fewer, every code's value too)")
    formats.set_defaults(run=_cmd_formats)

    mem = commands.add_parser(
        "memory", help="predicted (and measured) GPU memory of a training or inference step",
        description="Predict the peak GPU memory (max_memory_allocated) of the book's standard "
                    "step from the config alone: weights, gradients, optimizer state, saved "
                    "activations, transients and workspaces, phase by phase. --measure also "
                    "runs the step on this machine's GPU in a fresh process.")
    mem.add_argument("target", metavar="NAME|CONFIG.json",
                     help="a catalogue model (modelnotes list) or a Hugging Face style "
                          "config.json")
    mem.add_argument("--mode", choices=("train", "inference"), default="train")
    mem.add_argument("--dtype", choices=("fp32", "amp-bf16", "amp-fp16", "bf16"),
                     default="fp32", help="amp-*: fp32 weights, autocast; bf16: bf16 weights "
                                          "and optimizer state (default fp32)")
    mem.add_argument("--optimizer", choices=("adamw", "sgd", "sgd-momentum"),
                     help="training only (default adamw)")
    mem.add_argument("--batch", type=_positive, required=True,
                     help="batch size B (per GPU with --gpus)")
    mem.add_argument("--seq", type=_positive,
                     help="sequence length S (time steps for the LSTM); not for images")
    mem.add_argument("--checkpointing", action="store_true",
                     help="activation checkpointing (training a transformer)")
    mem.add_argument("--attn", choices=("sdpa", "eager"),
                     help="attention implementation of a transformer (default sdpa)")
    mem.add_argument("--gpus", type=_positive, default=1,
                     help="training on this many GPUs, one process each (default 1)")
    mem.add_argument("--shard", choices=("none", "ddp", "fsdp", "fsdp-no-reshard"),
                     help="how the step is split over --gpus: DDP (every GPU holds "
                          "everything), FSDP2's fully_shard (weights, gradients and optimizer "
                          "state in 1/gpus shards; ZeRO-3-like), or fully_shard with "
                          "reshard_after_forward=False (ZeRO-2-like); fsdp: GPT-2 so far")
    mem.add_argument("--json", action="store_true", help="print one JSON object")
    mem.add_argument("--measure", action="store_true",
                     help="also measure the step on this machine's CUDA GPU")
    mem.set_defaults(run=_cmd_memory)
    return top


def _user_error(error: Exception) -> bool:
    if isinstance(error, CommandError):
        return True
    # Not imported here: the catalogue imports torch, which `params --no-check` must not.
    catalogue = sys.modules.get(f"{__package__}.catalogue")
    return catalogue is not None and isinstance(error, catalogue.UnknownModelError)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "run", None):
        parser().print_help()
        return 0
    try:
        return args.run(args)
    except BrokenPipeError:  # `modelnotes list | head`
        return 0
    except Exception as error:
        if not _user_error(error):
            raise
        message = str(error).replace("\n", " ")
        print(f"modelnotes: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
