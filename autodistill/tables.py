"""Text tables: cells aligned in columns for the terminal, or Markdown (report.md, model cards)."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def aligned_table(header: Sequence[str], lines: Sequence[Sequence[str]], *, left: Collection[int] = ()) -> str:
    """Columns padded to their widest cell, a rule under the header; the columns in `left`
    left-aligned (text), the others right-aligned (numbers)."""
    widths = [max(len(line[c]) for line in [header, *lines]) for c in range(len(header))]

    def render(line: Sequence[str]) -> str:
        cells = [cell.ljust(w) if c in left else cell.rjust(w)
                 for c, (cell, w) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(line) for line in lines)])


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([row(header), row(["---"] * len(header)), *(row(line) for line in lines)])
