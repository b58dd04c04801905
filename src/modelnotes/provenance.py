"""Where the book's numbers come from: the device, the software versions, the commit.

Every page states this, and measurement cells ask :func:`measurement_device` for the
device they measure on. A published build sets ``MODELNOTES_REQUIRE_GPU=1`` so that a
machine without CUDA fails the build instead of quietly publishing CPU numbers.

>>> info = collect()
>>> info.torch == torch.__version__
True
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

REQUIRE_GPU_VARIABLE = "MODELNOTES_REQUIRE_GPU"


class GPURequiredError(RuntimeError):
    """The build was told to measure on a GPU and there is none."""


def gpu_required() -> bool:
    """True when the environment asks for a GPU-only (published) build."""
    return os.environ.get(REQUIRE_GPU_VARIABLE, "0").strip().lower() in {"1", "true", "yes"}


def check_gpu_requirement() -> None:
    """Raise :class:`GPURequiredError` if a GPU is required and CUDA is not available."""
    if gpu_required() and not torch.cuda.is_available():
        raise GPURequiredError(
            f"{REQUIRE_GPU_VARIABLE}=1 but CUDA is not available: refusing to build a "
            "published site from CPU measurements (unset it to build the preview)")


def measurement_device() -> torch.device:
    """The device measurement cells run on: the GPU when there is one.

    Raises :class:`GPURequiredError` when a GPU is required and absent.
    """
    check_gpu_requirement()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _run(command: list[str], cwd: Path | None = None) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20, cwd=cwd,
                                check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_commit(repo: Path | None = None) -> str:
    """The commit the book was built from; ``MODELNOTES_COMMIT`` wins when set.

    The GPU machine receives a copy of the working tree without ``.git``; the build
    command passes the commit along in that variable.
    """
    if os.environ.get("MODELNOTES_COMMIT"):
        return os.environ["MODELNOTES_COMMIT"]
    repo = repo or Path(__file__).resolve().parents[2]
    return _run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=repo) or "unknown"


@dataclass(frozen=True)
class Provenance:
    """The facts a reader needs to reproduce a page's numbers."""

    device: str  # "NVIDIA H100 80GB HBM3" or "CPU only (no CUDA)"
    measured_on_gpu: bool
    driver: str
    cuda: str
    torch: str
    transformers: str
    torchvision: str
    python: str
    date: str  # UTC, ISO 8601
    commit: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def sentence(self) -> str:
        """One line for the top or foot of a page."""
        where = (f"{self.device} (driver {self.driver}, CUDA {self.cuda})"
                 if self.measured_on_gpu else self.device)
        return (f"Measured on {where}; torch {self.torch}, transformers {self.transformers}, "
                f"torchvision {self.torchvision}, Python {self.python}; built {self.date} "
                f"from commit {self.commit}.")


def collect() -> Provenance:
    """Read the provenance of this process: GPU, driver, CUDA and library versions, date, commit."""
    on_gpu = torch.cuda.is_available()
    if on_gpu:
        device = torch.cuda.get_device_name(0)
        driver = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        driver = driver.splitlines()[0] if driver else "unknown"
    else:
        device, driver = "CPU only (no CUDA)", "none"
    return Provenance(
        device=device,
        measured_on_gpu=on_gpu,
        driver=driver,
        cuda=torch.version.cuda or "none",
        torch=torch.__version__,
        transformers=_version("transformers"),
        torchvision=_version("torchvision"),
        python=platform.python_version(),
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        commit=git_commit(),
    )


GPU_LOCK = Path(tempfile.gettempdir()) / "modelnotes-gpu.lock"
_held_lock = None  # the open lock file of this process, kept until the process ends


def hold_gpu() -> None:
    """Wait until no other process holds the book's GPU lock, then hold it until this
    process (a page's kernel) ends.

    The book's pages are executed several at a time (``sphinx -j``); the pages that use the
    GPU take this lock in :func:`page_start`, so that no two of them share it: timings are
    not disturbed and memory readings are not pushed out of memory by a neighbour.
    """
    global _held_lock
    if _held_lock is not None:
        return
    import fcntl

    handle = open(GPU_LOCK, "a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    _held_lock = handle


def page_start(gpu: bool = False) -> torch.device:
    """First cell of every page: enforce the GPU guard, fix seeds, say where numbers come from.

    Displays one line (as Markdown) naming the device and versions the page's numbers were
    produced with, and returns the device measurement cells should use. A page that measures
    on the GPU passes ``gpu=True``: on a CUDA machine it then runs alone on the GPU
    (:func:`hold_gpu`).
    """
    device = measurement_device()
    if gpu and device.type == "cuda":
        hold_gpu()
    torch.manual_seed(0)
    # transformers imports tqdm.auto, which warns in kernels without ipywidgets
    warnings.filterwarnings("ignore", message="IProgress not found")
    info = collect()
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # outside a notebook there is nothing to display into
        return device
    shell = get_ipython()
    if shell is not None:
        # numpy 2 writes its scalars as np.float64(0.25), which {glue:text} cannot format:
        # glued numpy numbers are shown as the plain Python numbers they equal
        import numpy as np

        plain = shell.display_formatter.formatters["text/plain"]
        plain.for_type(np.floating, lambda x, printer, cycle: printer.text(repr(float(x))))
        plain.for_type(np.integer, lambda x, printer, cycle: printer.text(repr(int(x))))
    if info.measured_on_gpu:
        line = f"**Where these numbers come from.** {info.sentence()}"
    else:
        line = (f"**Preview, no GPU.** Structure and parameter counts below are exact; any "
                f"figure labelled *measured* ran on the CPU and is not a GPU measurement, "
                f"unless the page says it is one of the H100 measurements committed with the "
                f"package. "
                f"{info.sentence()}")
    display(Markdown(f"<div class='modelnotes-where'>\n\n{line}\n\n</div>"))
    return device
