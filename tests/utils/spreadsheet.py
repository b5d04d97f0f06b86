"""What a spreadsheet would do with CSV text: which cells it would run as formulas."""

from __future__ import annotations

import csv
from io import StringIO

FORMULA = ("=", "+", "-", "@", "\t", "\r")


def formula_cells(text: str) -> list[str]:
    """Return every line of every cell, read back as CSV, that a spreadsheet would run (numbers aside)."""
    found = []
    for row in csv.reader(StringIO(text, newline="")):
        for cell in row:
            for line in cell.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
                if line.startswith(FORMULA) and not _number(line):
                    found.append(line)
    return found


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
