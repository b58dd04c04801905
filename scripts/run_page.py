"""Execute one or more pages of the book as notebooks, outside Sphinx, in a fresh kernel.

    python scripts/run_page.py docs/part2/layers.md [docs/part2/classic.md ...] [--save DIR]
                               [--installed --workdir DIR]

Each MyST page is read the way myst-nb reads it, executed cell by cell with nbclient in
a new Python kernel (offline, with this checkout's src/ importable), and the first failing
cell is printed with its traceback. With --save, the executed notebooks are written as
.ipynb files into DIR. With --installed the pages run as a reader's downloaded notebooks do:
against the installed package (this checkout's src/ is not added to the path), each in its own
empty folder under --workdir, so that a page reading files from the repository fails.
Exit status 0 when every page runs, 1 when one fails, 2 on bad usage.
Writing a page, this is the quick loop; `nox -s docs` remains the real build.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--save", type=Path, help="write executed notebooks into this folder")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--installed", action="store_true",
                        help="use the installed package, not src/, and run outside the repo")
    parser.add_argument("--workdir", type=Path, help="with --installed: where to run them")
    args = parser.parse_args(argv)
    try:
        import nbformat
        from myst_nb.core.read import read_myst_markdown_notebook
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as error:
        print(f"run_page: needs the docs extras (pip install -e '.[docs]'): {error}",
              file=sys.stderr)
        return 2
    missing = [str(p) for p in args.pages if not p.is_file()]
    if missing:
        print(f"run_page: no such page: {', '.join(missing)}", file=sys.stderr)
        return 2

    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[variable] = "1"
    os.environ.pop("MPLBACKEND", None)
    if args.installed:
        if args.workdir is None:
            print("run_page: --installed needs --workdir", file=sys.stderr)
            return 2
        # src/ is not added; PYTHONPATH stays as the caller set it (nox's notebooks session
        # points it at the installed wheel)
    else:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

    failed = 0
    for page in args.pages:
        notebook = read_myst_markdown_notebook(page.read_text(), path=page)
        where = page.parent
        if args.installed:
            where = args.workdir / page.with_suffix("").as_posix().replace("/", "_")
            where.mkdir(parents=True, exist_ok=True)
        client = NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(where)}})
        start = time.perf_counter()
        try:
            client.execute()
            print(f"ok      {page}  ({time.perf_counter() - start:.1f} s)")
        except CellExecutionError as error:
            failed += 1
            print(f"FAILED  {page}  ({time.perf_counter() - start:.1f} s)\n{error}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, args.save / f"{page.stem}.ipynb")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
