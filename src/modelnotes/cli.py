"""The ``modelnotes`` command.

    modelnotes list                      the catalogue
    modelnotes summary NAME [--depth D]  torchinfo summary of a catalogue model
    modelnotes provenance [--json]       the device and versions this machine would measure with

Errors are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__


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
    return top


def main(argv: list[str] | None = None) -> int:
    from .catalogue import UnknownModelError

    args = parser().parse_args(argv)
    if not getattr(args, "run", None):
        parser().print_help()
        return 0
    try:
        return args.run(args)
    except UnknownModelError as error:
        print(f"modelnotes: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `modelnotes list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
