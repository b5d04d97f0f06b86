import csv
from io import StringIO

import pandas as pd
import pytest
from sqlalchemy import Engine

from manager import api, export
from manager.spreadsheet import csv_text, safe_cell
from tests.utils.factories import record
from tests.utils.spreadsheet import formula_cells


@pytest.mark.parametrize("text", ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_is_neutralised(text: str) -> None:
    assert safe_cell(text) == "'" + text


def test_numbers_stay_numbers() -> None:
    assert csv_text(["n", "x"], [[-5, -0.25]]) == "n,x\r\n-5,-0.25\r\n"


def test_registry_export_neutralises_a_hostile_name(engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"name": '=HYPERLINK("http://x")'})
    rows = {r["model_id"]: r for r in csv.DictReader(StringIO(export.export_csv(engine, "registry")))}
    assert rows["deepseek-chat"]["name"] == '\'=HYPERLINK("http://x")'


HOSTILE = 'ok\r=HYPERLINK("http://evil.example")'
FORMULA = '=HYPERLINK("http://evil.example")'


@pytest.mark.parametrize("text", ["a\r=cmd()", "a\n@SUM(A1)", "a\r\n+1", "=x\r-y"])
def test_every_line_of_a_multi_line_cell_is_neutralised(text: str) -> None:
    assert formula_cells(csv_text(["c"], [[text]])) == []


def test_no_export_holds_a_cell_that_starts_a_formula(engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"name": HOSTILE, "tags": [HOSTILE], "version": "-1+1"})
    api.add_budget(engine, {"name": HOSTILE, "scope": "model:deepseek-chat", "period": "monthly", "amount_usd": 1})
    api.ingest_records(
        engine,
        [
            record(
                request_id=HOSTILE, success="false", error_type=HOSTILE, language="@x", team=FORMULA, tags=[FORMULA]
            ),
            record(request_id="r-2", cost="0.1"),
        ],
    )
    for kind in export.EXPORT_KINDS:
        for by in ("team", "tag") if kind == "spend" else (None,):
            text = export.export_csv(engine, kind, by=by)
            assert formula_cells(text) == [], kind
            assert kind != "spend" or "'" + FORMULA.replace('"', '""') in text  # there, quoted as text


def test_no_table_download_holds_a_cell_that_starts_a_formula(engine: Engine) -> None:
    frame = pd.DataFrame({"model_id": [HOSTILE, "=a\n-b"], "requests": [-1, 2], "note": ["x\r\n@y", None]})
    assert formula_cells(export.frame_csv(frame)) == []
