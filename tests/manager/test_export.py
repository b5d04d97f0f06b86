import csv
from io import StringIO

import pytest
from sqlalchemy import Engine

from manager import api
from manager.export import csv_text, safe_cell


@pytest.mark.parametrize("text", ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_is_neutralised(text: str) -> None:
    assert safe_cell(text) == "'" + text


def test_numbers_stay_numbers() -> None:
    assert csv_text(["n", "x"], [[-5, -0.25]]) == "n,x\n-5,-0.25\n"


def test_registry_export_neutralises_a_hostile_name(engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"name": "=HYPERLINK(\"http://x\")"})
    rows = {r["model_id"]: r for r in csv.DictReader(StringIO(api.export_csv(engine, "registry")))}
    assert rows["deepseek-chat"]["name"] == "'=HYPERLINK(\"http://x\")"
