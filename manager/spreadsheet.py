"""CSV text that spreadsheets open safely: no cell runs as a formula, line breaks stay inside their cell."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")


def safe_cell(value: Any) -> Any:
    """Return a value fit for a CSV cell: text that a spreadsheet would run as a formula is quoted with '.

    Every line of a multi-line cell is treated so, since a spreadsheet that splits a row at a line break
    starts a new cell there.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_STARTS):
        value = "'" + value
    parts = _LINE_BREAK.split(value)
    # Even positions are the lines, odd ones the breaks between them.
    return "".join(
        "'" + part if i % 2 == 0 and part.startswith(_FORMULA_STARTS) else part for i, part in enumerate(parts)
    )


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return rows as CSV text with a header row; cells holding a line break of either kind are quoted."""
    buffer = io.StringIO()
    write_csv(buffer, header, rows)
    return buffer.getvalue()


def write_csv(handle: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write rows as CSV to an open text file, row by row, as csv_text makes them; return the rows written."""
    # With CRLF as the row terminator the writer quotes any cell that holds \r or \n (RFC 4180's own form).
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(header)
    written = 0
    for row in rows:
        writer.writerow([safe_cell("" if v is None else v) for v in row])
        written += 1
    return written
