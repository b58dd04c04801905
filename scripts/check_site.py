"""Open the built book in headless Chromium and check it as a reader would.

    python scripts/check_site.py docs/_build/html [--expect preview|measured|any]
                                 [--search TERM ...] [--screenshots DIR]

Serves the site on 127.0.0.1, renders every page in Chromium (JavaScript on), and fails if
a page of the book is missing, a page shows an execution error or a traceback, an image
does not load or decode, an equation is left as raw TeX (MathJax ships with the book, so
this holds offline), the provenance footer is missing, the preview banner is missing
from a preview (or present on a measured build), or the search page finds nothing for a
term the book uses. Exit status 0 when every check passes, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import struct
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from html.parser import HTMLParser
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
DEFAULT_TERMS = ("attention", "convolution", "LSTM", "parameters")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
ERROR_MARKERS = ("Traceback (most recent call last)", 'class="output traceback',
                 "output_type=error", "CellExecutionError")


class PageParser(HTMLParser):
    """Collect what the checks look at: images, classes present, search results."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.classes: set[str] = set()
        self.search_results = 0
        self._in_search_list = 0
        self.math = 0  # spans and divs Sphinx wrote TeX into
        self.typeset = 0  # what MathJax turned into rendered maths

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        self.classes.update(classes)
        if "math" in classes and tag in ("span", "div"):
            self.math += 1
        if tag == "mjx-container":
            self.typeset += 1
        if tag == "img" and attributes.get("src"):
            self.images.append(attributes["src"])
        if tag == "ul" and "search" in classes:
            self._in_search_list += 1
        elif tag == "li" and self._in_search_list:
            self.search_results += 1

    def handle_endtag(self, tag):
        if tag == "ul" and self._in_search_list:
            self._in_search_list -= 1


def book_pages() -> list[str]:
    """The HTML path of every source page of the book."""
    pages = []
    for source in sorted(DOCS.rglob("*")):
        relative = source.relative_to(DOCS)
        if source.suffix not in {".md", ".ipynb", ".rst"} or relative.parts[0].startswith("_"):
            continue
        if relative.name == "README.md":
            continue
        pages.append(relative.with_suffix(".html").as_posix())
    return pages


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per page is printed by the checker instead
        pass


def render(chromium: str, url: str, profile: str, screenshot: Path | None = None) -> str:
    """The DOM of *url* after its scripts ran; optionally a full-width screenshot too."""
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=8000"]
    result = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed on {url}: {result.stderr.strip()[-300:]}")
    if screenshot is not None:
        subprocess.run([*base, "--window-size=1300,2400", f"--screenshot={screenshot}", url],
                       capture_output=True, timeout=120)
    return result.stdout


def image_problem(url: str) -> str | None:
    """None when *url* serves a decodable image, else what is wrong with it."""
    if url.startswith("data:"):
        return None
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as error:
        return f"does not load ({error})"
    if not data:
        return "is empty"
    path = urllib.parse.urlparse(url).path.lower()
    if path.endswith(".svg"):
        return None if b"<svg" in data[:2000] else "is not an SVG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return png_problem(data)
    if data[:3] == b"\xff\xd8\xff" or data[:6] in (b"GIF87a", b"GIF89a"):
        return None
    return "is not an image"


def png_problem(data: bytes) -> str | None:
    """Walk a PNG's chunks: every CRC must match and the image data must inflate fully."""
    position, pixels = 8, b""
    while position < len(data):
        if position + 8 > len(data):
            return "is truncated"
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        crc = data[position + 8 + length:position + 12 + length]
        if len(body) != length or len(crc) != 4:
            return "is truncated"
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            return f"has a corrupt {kind.decode(errors='replace')} chunk"
        if kind == b"IDAT":
            pixels += body
        if kind == b"IEND":
            break
        position += 12 + length
    else:
        return "has no IEND chunk"
    try:
        raw = zlib.decompress(pixels)
    except zlib.error as error:
        return f"does not decode ({error})"
    return None if raw else "has no pixels"


def check(site: Path, expect: str, terms: list[str], screenshots: Path | None) -> list[str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("check_site: error: chromium not found (apt-get install chromium)")
    failures: list[str] = []
    server, root = serve(site)
    profile = tempfile.mkdtemp(prefix="check-site-")
    try:
        pages = book_pages()
        for page in pages:
            if not (site / page).exists():
                failures.append(f"{page}: missing from the build")
                continue
            shot = screenshots / page.replace("/", "__").replace(".html", ".png") if screenshots else None
            dom = render(chromium, root + page, profile, shot)
            parsed = PageParser()
            parsed.feed(dom)
            problems = [f"shows an execution error ({marker!r})" for marker in ERROR_MARKERS
                        if marker in dom]
            if parsed.typeset < parsed.math:
                problems.append(f"typeset {parsed.typeset} of {parsed.math} equations (MathJax)")
            if "modelnotes-provenance" not in parsed.classes:
                problems.append("has no provenance footer")
            bannered = "bd-header-announcement" in parsed.classes and "Preview built without a GPU" in dom
            if expect == "preview" and not bannered:
                problems.append("has no preview banner")
            if expect == "measured" and bannered:
                problems.append("carries the preview banner on a measured build")
            for src in parsed.images:
                problem = image_problem(urllib.parse.urljoin(root + page, src))
                if problem:
                    problems.append(f"image {src} {problem}")
            status = "ok" if not problems else "FAIL"
            print(f"{status:4} {page} ({len(parsed.images)} images, {parsed.math} equations)")
            failures += [f"{page}: {p}" for p in problems]
        for term in terms:
            dom = render(chromium, f"{root}search.html?q={urllib.parse.quote(term)}", profile)
            parsed = PageParser()
            parsed.feed(dom)
            print(f"{'ok' if parsed.search_results else 'FAIL':4} search {term!r}: "
                  f"{parsed.search_results} results")
            if not parsed.search_results:
                failures.append(f"search for {term!r} returns nothing")
    finally:
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built HTML directory (docs/_build/html)")
    parser.add_argument("--expect", choices=("preview", "measured", "any"), default="any",
                        help="which kind of build this is: a preview must carry the banner, "
                             "a measured build must not")
    parser.add_argument("--search", nargs="+", default=list(DEFAULT_TERMS), metavar="TERM",
                        help="terms the search page must find")
    parser.add_argument("--screenshots", type=Path, help="write a PNG of every page here")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").exists():
        parser.error(f"{args.site} has no index.html: build the book first (nox -s docs)")
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    failures = check(args.site, args.expect, args.search, args.screenshots)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    print(f"checked {len(book_pages())} pages and {len(args.search)} searches: "
          f"{len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
