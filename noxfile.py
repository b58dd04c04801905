"""Sessions: `nox -s tests` (pytest + doctests), `nox -s docs` (the book), `nox -s check_site`.

On the GPU machine, which is offline and already has the packages, run
`nox --no-venv -s docs`: installs are skipped there and the build uses that Python.
"""

import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONHASHSEED": "0"}


def _in_venv(session: nox.Session) -> bool:
    # With --no-venv the session's "virtualenv" is a PassthroughEnv: use what is installed.
    return not isinstance(session.virtualenv, nox.virtualenv.PassthroughEnv)


def _install(session: nox.Session, extras: str) -> str:
    """Install the package with *extras*; return the Python to run things with."""
    if _in_venv(session):
        session.install("-e", f".[{extras}]")
        return "python"
    else:
        session.log("--no-venv: using the packages already installed, with src/ on PYTHONPATH")
        session.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
        return sys.executable  # the interpreter nox itself runs on, which has the packages


@nox.session
def tests(session: nox.Session) -> None:
    """pytest over tests/ and the package's doctests."""
    python = _install(session, "tests")
    session.run(python, "-m", "pytest", *session.posargs, env={**OFFLINE, "MPLBACKEND": "Agg"})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the book into docs/_build/html, executing every page.

    With CUDA this is the measured site; without it, a bannered preview. Set
    MODELNOTES_REQUIRE_GPU=1 to make a machine without CUDA fail the build.
    """
    python = _install(session, "docs")
    build = ROOT / "docs" / "_build"
    if build.exists() and "--keep" not in session.posargs:
        shutil.rmtree(build)  # every page is executed afresh: no stale numbers
    args = [a for a in session.posargs if a != "--keep"]
    build.mkdir(parents=True, exist_ok=True)
    # pages share their GPU measurements through this file: each case is measured once
    env = {**OFFLINE, "MODELNOTES_MEASUREMENTS": str(build / "measurements.jsonl")}
    # pages execute in parallel; those that use the GPU take turns on it
    # (provenance.page_start(gpu=True)), so timings and memory readings stay undisturbed
    jobs = os.environ.get("MODELNOTES_JOBS", "auto")
    session.run(python, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
                "-j", jobs, "docs", str(build / "html"), *args, env=env)
    session.log(f"the book is in {build / 'html' / 'index.html'}")


@nox.session(venv_backend="none")
def check_site(session: nox.Session) -> None:
    """Open the built book in headless Chromium and check every page (run `docs` first).

    The checker needs only the standard library and Debian's chromium.
    """
    session.run(sys.executable, "scripts/check_site.py", "docs/_build/html", *session.posargs)


@nox.session
def notebooks(session: nox.Session) -> None:
    """Every page as a reader gets it: the package built as a wheel and installed with its
    command, then each page executed as a notebook in a fresh kernel, outside Sphinx and
    outside this checkout (scripts/run_page.py --installed)."""
    tmp = Path(session.create_tmp())
    wheels = tmp / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    session.run("python", "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                str(ROOT))
    wheel = next(wheels.glob("modelnotes-*.whl"))
    session.install(f"{wheel}[docs]")
    pages = sorted(str(p) for p in (ROOT / "docs").rglob("*.md")
                   if "_build" not in p.parts and p.name != "README.md")
    env = {**OFFLINE, "PYTHONPATH": ""}
    with session.chdir(tmp):
        # the wheel, not src/: the package and its data come from site-packages
        session.run("python", "-c", "import modelnotes, modelnotes.sweep as s; "
                    "assert 'site-packages' in modelnotes.__file__, modelnotes.__file__; "
                    "assert s.COMMITTED.is_file(); print('modelnotes', modelnotes.__version__, "
                    "'from', modelnotes.__file__)", env=env)
        session.run("modelnotes", "--version", env=env)
        session.run("python", str(ROOT / "scripts" / "run_page.py"), "--installed",
                    "--workdir", str(tmp / "pages"), *pages, env=env)
