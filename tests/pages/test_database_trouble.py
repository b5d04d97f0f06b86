import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.conftest import APP


def test_an_unreachable_database_is_a_short_message_never_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/manager")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The database cannot be reached right now; try again in a minute. The server log says why."
    ]
