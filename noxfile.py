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


# torch with its CUDA libraries is 5.5 GB: one environment for every session, not one each,
# so a machine with a small disk (CI's has had under 20 GB free) can run them all
BOOK_ENV = ROOT / ".nox" / "book"
# nox still makes a venv per session, created empty and without pip (a few MB): it exists so
# that `nox --no-venv` keeps its meaning, "use the packages already installed"
LIGHT = {"venv_backend": "venv", "venv_params": ["--without-pip"]}


def _in_venv(session: nox.Session) -> bool:
    # With --no-venv the session's "virtualenv" is a PassthroughEnv: use what is installed.
    return not isinstance(session.virtualenv, nox.virtualenv.PassthroughEnv)


def _book_env(session: nox.Session) -> tuple[str, dict[str, str]]:
    """Create or update the shared environment: the package, editable, with its tests and docs
    extras. Return its Python and the variables that put it first on PATH for `session.run`."""
    python = BOOK_ENV / "bin" / "python"
    if not python.exists():
        session.run(sys.executable, "-m", "venv", str(BOOK_ENV), external=True)
    stamp = BOOK_ENV / "modelnotes-installed-from.toml"
    wanted = (ROOT / "pyproject.toml").read_text()
    if not stamp.exists() or stamp.read_text() != wanted:  # reinstall when the deps change
        session.run(str(python), "-m", "pip", "install", "--no-cache-dir", "-e",
                    f"{ROOT}[tests,docs]", external=True)
        stamp.write_text(wanted)
    return str(python), {"VIRTUAL_ENV": str(BOOK_ENV),
                         "PATH": os.pathsep.join([str(BOOK_ENV / "bin"),
                                                  os.environ.get("PATH", "")])}


def _install(session: nox.Session) -> tuple[str, dict[str, str]]:
    """The Python to run things with, and the environment variables to run it under."""
    if _in_venv(session):
        return _book_env(session)
    session.log("--no-venv: using the packages already installed, with src/ on PYTHONPATH")
    pythonpath = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return sys.executable, {"PYTHONPATH": pythonpath}  # nox's own interpreter has the packages


@nox.session(**LIGHT)
def tests(session: nox.Session) -> None:
    """pytest over tests/ and the package's doctests."""
    python, env = _install(session)
    session.run(python, "-m", "pytest", *session.posargs,
                env={**env, **OFFLINE, "MPLBACKEND": "Agg"}, external=True)


@nox.session(**LIGHT)
def docs(session: nox.Session) -> None:
    """Build the book into docs/_build/html, executing every page.

    With CUDA this is the measured site; without it, a bannered preview. Set
    MODELNOTES_REQUIRE_GPU=1 to make a machine without CUDA fail the build.
    """
    python, env = _install(session)
    build = ROOT / "docs" / "_build"
    if build.exists() and "--keep" not in session.posargs:
        shutil.rmtree(build)  # every page is executed afresh: no stale numbers
    args = [a for a in session.posargs if a != "--keep"]
    build.mkdir(parents=True, exist_ok=True)
    # pages share their GPU measurements through this file: each case is measured once
    env = {**env, **OFFLINE, "MODELNOTES_MEASUREMENTS": str(build / "measurements.jsonl")}
    # pages execute in parallel; those that use the GPU take turns on it
    # (provenance.page_start(gpu=True)), so timings and memory readings stay undisturbed
    jobs = os.environ.get("MODELNOTES_JOBS", "auto")
    session.run(python, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
                "-j", jobs, "docs", str(build / "html"), *args, env=env, external=True)
    session.log(f"the book is in {build / 'html' / 'index.html'}")


@nox.session(venv_backend="none")
def check_site(session: nox.Session) -> None:
    """Open the built book in headless Chromium and check every page (run `docs` first).

    The checker needs only the standard library and Debian's chromium.
    """
    session.run(sys.executable, "scripts/check_site.py", "docs/_build/html", *session.posargs)


@nox.session(**LIGHT)
def notebooks(session: nox.Session) -> None:
    """Every page as a reader gets it: the package built as a wheel and installed with its
    command, then each page executed as a notebook in a fresh kernel, outside Sphinx and
    outside this checkout (scripts/run_page.py --installed).

    The wheel is installed into a folder of its own that comes first on PYTHONPATH, beside the
    shared environment's dependencies (installed from the same pyproject.toml): the pages
    import the wheel's modules and data, not src/, without a second 5.5 GB of torch.
    """
    python, env = _install(session)
    tmp = Path(session.create_tmp()).resolve()  # absolute: the pages run from other folders
    wheels, unpacked = tmp / "wheels", tmp / "installed"
    for folder in (wheels, unpacked):
        shutil.rmtree(folder, ignore_errors=True)
    session.run(python, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT),
                env=env, external=True)
    wheel = next(wheels.glob("modelnotes-*.whl"))
    session.run(python, "-m", "pip", "install", "--no-deps", "-q", "--target", str(unpacked),
                str(wheel), env=env, external=True)
    pages = sorted(str(p) for p in (ROOT / "docs").rglob("*.md")
                   if "_build" not in p.parts and p.name != "README.md")
    env = {**env, **OFFLINE, "PYTHONPATH": str(unpacked),
           "PATH": os.pathsep.join([str(unpacked / "bin"), env.get("PATH", "")])}
    with session.chdir(tmp):
        session.run(python, "-c", "import modelnotes, modelnotes.sweep as s, sys; "
                    f"assert modelnotes.__file__.startswith({str(unpacked)!r}), "
                    "modelnotes.__file__; assert s.COMMITTED.is_file(); "
                    "print('modelnotes', modelnotes.__version__, 'from', modelnotes.__file__)",
                    env=env, external=True)
        session.run(str(unpacked / "bin" / "modelnotes"), "--version", env=env, external=True)
        session.run(python, str(ROOT / "scripts" / "run_page.py"), "--installed",
                    "--workdir", str(tmp / "pages"), *pages, env=env, external=True)
