"""Sphinx configuration for the modelnotes book.

Every page is a MyST notebook executed at build time. This file decides, once per
build, whether the build is the measured site (CUDA present) or a preview (no CUDA),
and writes that, with the provenance, into a banner and a footer on every page.
"""

import html
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# Pages build models from configs; nothing may reach for the Hugging Face hub. The
# notebook kernels inherit this environment.
for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[variable] = "1"
# Kernels must keep ipykernel's inline backend so figures render: no MPLBACKEND here.
os.environ.pop("MPLBACKEND", None)
# Kernels must import the package from this checkout even when it is not installed
# (the GPU machine's --no-venv build).
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

from modelnotes import __version__  # noqa: E402
from modelnotes.provenance import check_gpu_requirement, collect  # noqa: E402

check_gpu_requirement()  # MODELNOTES_REQUIRE_GPU=1 without CUDA stops the build here
PROVENANCE = collect()

project = "modelnotes"
author = "the modelnotes authors"
copyright = "2026, the modelnotes authors"
release = version = __version__

extensions = ["myst_nb", "sphinx_design", "sphinx_copybutton"]
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints", "README.md", "_static"]

# ----- execution ------------------------------------------------------------------------
nb_execution_mode = "force"  # every build runs every page: no cached numbers
nb_execution_raise_on_error = True  # a page that fails to execute fails the build
nb_execution_show_tb = True  # and the log shows why
nb_execution_timeout = 900  # seconds per cell; the longest GPU sweeps stay well under it
nb_merge_streams = True
nb_render_markdown_format = "myst"  # Markdown a cell displays (tables included) renders like the page
# Library chatter on stderr (tqdm, deprecation notes) is not content; failures still fail
# the build through nb_execution_raise_on_error.
nb_output_stderr = "remove"
nb_execution_allow_errors = False

myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist", "substitution",
                          "attrs_inline"]
myst_heading_anchors = 3

# ----- the page ---------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "modelnotes"
html_static_path = ["_static"]
html_css_files = ["modelnotes.css"]
html_last_updated_fmt = None
# MathJax ships with the book (docs/_static/mathjax/README.md): equations render offline too.
mathjax_path = "mathjax/tex-svg.js"

_provenance_line = html.escape(PROVENANCE.sentence())
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 2,
    "use_download_button": True,
    "extra_footer": f'<p class="modelnotes-provenance">{_provenance_line}</p>',
}
if not PROVENANCE.measured_on_gpu:
    html_theme_options["announcement"] = (
        "<strong>Preview built without a GPU.</strong> Every structure, shape and parameter "
        "count on this site is computed as usual, but the measured figures (GPU memory, "
        "timings, anything labelled <em>measured</em>) ran on the CPU or were skipped, or, "
        "where a page says so, are the H100 measurements committed with the package, not "
        "measurements of this build. The published book is built on an NVIDIA GPU.")
html_context = {"modelnotes_provenance": PROVENANCE.as_dict()}


def _offer_the_notebook(app, pagename, templatename, context, doctree):
    """Offer each page's executed notebook (.ipynb) in the download menu.

    sphinx-book-theme does this only when launch buttons (Binder, Colab) are configured; the
    book has none, since it builds offline, so the same copy is made here, before the theme
    builds its menu (priority 500 < the theme's 501).
    """
    import shutil

    if doctree is None or not str(app.env.doc2path(pagename)).endswith(".md"):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    app.connect("html-page-context", _offer_the_notebook, priority=500)
