"""The ``modelnotes`` command.

    modelnotes list                      the catalogue
    modelnotes summary NAME [--depth D]  torchinfo summary of a catalogue model
    modelnotes provenance [--json]       the device and versions this machine would measure with
    modelnotes params NAME|CONFIG.json [--json] [--no-check]
                                         exact parameter count from the config, by component

Errors are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
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
