"""Showing results on a page: tables as Markdown, which myst-nb renders as real tables.

>>> print(markdown_table(["model", "parameters"], [["resnet18", 11689512]], ["---", "--:"]).data)
| model | parameters |
|---|--:|
| resnet18 | 11,689,512 |
"""

from __future__ import annotations

from typing import Sequence


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"  # counts are read in thousands, never as a run of digits
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]],
                   align: Sequence[str] | None = None):
    """An IPython Markdown object holding a table; integers get thousands separators.

    *align* is one Markdown alignment marker per column (``"---"``, ``"--:"``, ``":-:"``).
    """
    from IPython.display import Markdown

    align = list(align) if align else ["---"] * len(header)
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError("every row and the alignment need one entry per header column")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))
