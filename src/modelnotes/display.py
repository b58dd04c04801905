"""Showing results on a page: tables as Markdown, which myst-nb renders as real tables.

>>> print(markdown_table(["model", "parameters"], [["resnet18", 11689512]], ["---", "--:"]).data)
| model | parameters |
|---|--:|
| resnet18 | 11,689,512 |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class MarkdownText:
    """Markdown that a notebook displays as Markdown (IPython looks for ``_repr_markdown_``)."""

    data: str

    def _repr_markdown_(self) -> str:
        return self.data


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"  # counts are read in thousands, never as a run of digits
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]],
                   align: Sequence[str] | None = None) -> MarkdownText:
    """A Markdown table a notebook renders as a table; integers get thousands separators.

    *align* is one Markdown alignment marker per column (``"---"``, ``"--:"``, ``":-:"``).
    """
    align = list(align) if align else ["---"] * len(header)
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError("every row and the alignment need one entry per header column")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return MarkdownText("\n".join(lines))


def png(fig, dpi: int = 110):
    """A matplotlib figure as an IPython PNG image, and the figure closed.

    Closing matters in a notebook: an open figure would be drawn a second time at the end
    of the cell. The image can be displayed, or glued and placed in the text.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Image(buffer.getvalue())


def show_lines(obj, *needles: str) -> None:
    """Print the lines of *obj*'s source that contain any of *needles*, with their line numbers.

    >>> import contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()) as printed:
    ...     show_lines(show_lines, "def show_lines")
    >>> printed.getvalue().split()[1:3]
    ['def', 'show_lines(obj,']
    """
    import inspect

    lines, start = inspect.getsourcelines(obj)
    for offset, line in enumerate(lines):
        if any(needle in line for needle in needles):
            print(f"{start + offset:5d}  {line.rstrip()}")
