import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from manager import api, demo
from manager.cli import build_parser, main
from tests.utils.factories import generated_records, record, write_csv

ROOT = Path(__file__).resolve().parents[2]


def run(db_url: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--db", db_url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_prints_the_json_contract_and_exits_0(db_url: str, tmp_path: Path, capsys) -> None:
    path = write_csv(tmp_path / "log.csv", generated_records(20))
    code, out, _ = run(db_url, "ingest", str(path), "--json", capsys=capsys)
    assert code == 0
    assert json.loads(out) == {"accepted": 20, "rejected": 0, "duplicates": 0, "rejects_file": None}


def test_ingest_with_some_bad_rows_exits_3(db_url: str, tmp_path: Path, capsys) -> None:
    path = write_csv(tmp_path / "log.csv", [record(request_id="a"), record(request_id="b", model_id="nope")])
    code, out, _ = run(db_url, "ingest", str(path), "--json", capsys=capsys)
    assert code == 3
    assert json.loads(out)["rejects_file"] == str(tmp_path / "log.csv.rejects.csv")


def test_ingest_of_an_unusable_file_exits_2_naming_it(db_url: str, tmp_path: Path, capsys) -> None:
    code, _, err = run(db_url, "ingest", str(tmp_path / "missing.csv"), capsys=capsys)
    assert code == 2
    assert "missing.csv" in err


def test_ingest_in_smaller_transactions_stores_the_same(db_url: str, tmp_path: Path, capsys) -> None:
    path = write_csv(tmp_path / "log.csv", generated_records(250))
    code, out, _ = run(db_url, "ingest", str(path), "--batch-rows", "100", "--json", capsys=capsys)
    assert (code, json.loads(out)["accepted"]) == (0, 250)


def test_models_list_json_uses_spec_field_names(db_url: str, capsys) -> None:
    code, out, _ = run(db_url, "models", "list", "--json", capsys=capsys)
    haiku = next(m for m in json.loads(out) if m["model_id"] == "claude-3-haiku-20240307")
    assert code == 0
    assert haiku["supported_languages"][:2] == ["en", "es"]
    assert {"provider", "cost_per_1k_input", "cost_per_1k_output", "quality_score", "metadata"} <= haiku.keys()


def test_models_set_parses_json_values(db_url: str, capsys) -> None:
    run(db_url, "models", "set", "deepseek-chat", "priority=2", 'tags=["cheap"]', "name=DeepSeek V3", capsys=capsys)
    code, out, _ = run(db_url, "models", "show", "deepseek-chat", capsys=capsys)
    shown = json.loads(out)
    assert (shown["priority"], shown["tags"], shown["name"]) == (2, ["cheap"], "DeepSeek V3")


def test_models_set_out_of_range_exits_2_with_the_range(db_url: str, capsys) -> None:
    code, _, err = run(db_url, "models", "set", "deepseek-chat", "top_p=3", capsys=capsys)
    assert code == 2
    assert "top_p: 3 is out of range (allowed 0 to 1)" in err


def test_models_add_and_remove(db_url: str, tmp_path: Path, capsys) -> None:
    spec = tmp_path / "new.json"
    spec.write_text(json.dumps({"model_id": "gpt-4o", "provider": "openai", "name": "GPT-4o"}))
    assert run(db_url, "models", "add", "--file", str(spec), capsys=capsys)[0] == 0
    assert run(db_url, "models", "remove", "gpt-4o", capsys=capsys)[0] == 0
    assert run(db_url, "models", "show", "gpt-4o", capsys=capsys)[0] == 2


def test_export_usage_writes_the_file(db_url: str, tmp_path: Path, capsys) -> None:
    run(db_url, "ingest", str(write_csv(tmp_path / "log.csv", generated_records(30))), capsys=capsys)
    out = tmp_path / "usage.csv"
    code, _, _ = run(
        db_url, "export", "usage", "--from", "2026-03-01", "--to", "2026-03-01", "--out", str(out), capsys=capsys
    )
    dates = {line.split(",")[0] for line in out.read_text().splitlines()[1:]}
    assert code == 0
    assert dates == {"2026-03-01"}


def _commands() -> list[str]:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    names = []
    for name, sub in commands.choices.items():
        nested = [a for a in sub._actions if a.dest.endswith("_action")]
        names += [f"{name} {n}" for n in nested[0].choices] if nested else [name]
    return names


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_and_appears_in_the_readme(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "manager", *command.split(), "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) > 3
    assert f"python -m manager {command}" in (ROOT / "README.md").read_text()


def test_users_add_reads_the_password_from_stdin_and_list_never_shows_it(
    db_url: str, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret password\n"))
    code, out, _ = run(db_url, "users", "add", "Ada", "--role", "admin", "--password-stdin", "--json", capsys=capsys)
    assert code == 0
    assert json.loads(out)["name"] == "ada"
    code, out, _ = run(db_url, "users", "list", "--json", capsys=capsys)
    (listed,) = json.loads(out)
    assert (listed["name"], listed["role"], listed["last_sign_in_at"]) == ("ada", "admin", None)
    assert "s3cret" not in out and "argon2" not in out


def test_users_set_role_and_remove(db_url: str, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, role in (("ada", "admin"), ("vi", "viewer")):
        monkeypatch.setattr("sys.stdin", io.StringIO("long enough\n"))
        run(db_url, "users", "add", name, "--role", role, "--password-stdin", capsys=capsys)
    code, out, _ = run(db_url, "users", "set-role", "vi", "editor", "--json", capsys=capsys)
    assert (code, json.loads(out)["role"]) == (0, "editor")
    code, _, err = run(db_url, "users", "remove", "ada", capsys=capsys)
    assert (code, err) == (2, "error: name: ada is the last admin; make another account admin first\n")
    run(db_url, "users", "remove", "vi", capsys=capsys)
    _, out, _ = run(db_url, "users", "list", "--json", capsys=capsys)
    assert [a["name"] for a in json.loads(out)] == ["ada"]


def test_a_viewer_named_as_actor_is_refused_by_the_manager(db_url: str, capsys, monkeypatch) -> None:
    for name, role in (("ada", "admin"), ("vi", "viewer")):
        monkeypatch.setattr("sys.stdin", io.StringIO("long enough\n"))
        run(db_url, "users", "add", name, "--role", role, "--password-stdin", capsys=capsys)
    code, _, err = run(db_url, "models", "set", "deepseek-chat", "priority=1", "--actor", "vi", capsys=capsys)
    assert (code, err) == (2, "error: vi is a viewer: to edit the registry takes the editor role\n")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("foo://bar", "is not a database URL this manager can use"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/x", "cannot use the database at"),
    ],
)
def test_an_unusable_database_url_is_one_line_and_exit_2(
    url: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", url, "report"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and words in error[0]


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.db").write_text("not a database")
    assert main(["--db", f"sqlite:///{tmp_path / 'notes.db'}", "report"]) == 2
    assert capsys.readouterr().err.strip().endswith("file is not a database")


def test_read_commands_refuse_a_database_that_does_not_exist(tmp_path: Path, capsys) -> None:
    target = tmp_path / "no" / "such" / "x.db"
    assert main(["--db", f"sqlite:///{target}", "report"]) == 2
    assert "`python -m manager init`" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_init_creates_the_database_readable_by_its_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "data" / "manager.db"
    assert main(["--db", f"sqlite:///{target}", "init"]) == 0
    engine = api.open_engine(f"sqlite:///{target}")
    with engine.begin() as conn:  # the write-ahead log exists while a connection is open
        conn.exec_driver_sql("UPDATE data_version SET version = version + 1")
        modes = {p.name: p.stat().st_mode & 0o777 for p in target.parent.iterdir()}
    engine.dispose()
    assert (target.parent.stat().st_mode & 0o777, modes["manager.db"], modes.get("manager.db-wal", 0o600)) == (
        0o700,
        0o600,
        0o600,
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["budgets", "add", "--name", "b", "--scope", "global", "--period", "daily", "--amount", "1e308"],
            "amount_usd",
        ),
        (["health", "--window", "1e9d"], "not a window from 1m to 365 days"),
        (["ingest", "log.csv", "--batch-rows", "5"], "--batch-rows: '5' is not from 100 to 1,000,000"),
        (["ingest", "log.csv", "--batch-rows", "many"], "--batch-rows: 'many' is not a whole number"),
    ],
)
def test_absurd_numbers_are_refused_in_one_line(db_url: str, args: list[str], words: str, capsys) -> None:
    try:
        code = main(["--db", db_url, *args])
    except SystemExit as exit:  # argparse refuses an argument by exiting with 2
        code = int(exit.code or 0)
    assert code == 2
    assert words in capsys.readouterr().err


def test_output_cut_short_by_its_reader_ends_quietly(db_url: str, engine: Engine) -> None:
    demo.seed_demo(engine, days=5, requests=3000, seed=2)
    command = [sys.executable, "-m", "manager", "--db", db_url, "export", "logs"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None and process.stdout.readline()
    process.stdout.close()
    assert (process.wait(timeout=60), process.stderr.read() if process.stderr else b"") == (0, b"")


def test_a_writer_blocked_past_the_busy_timeout_fails_in_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    assert main(["--db", url, "init"]) == 0
    monkeypatch.setenv("MANAGER_BUSY_TIMEOUT_SECONDS", "0.5")
    holder = sqlite3.connect(tmp_path / "manager.db")
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    try:
        code = main(["--db", url, "ingest", str(write_csv(tmp_path / "log.csv", [record()]))])
    finally:
        holder.rollback()
        holder.close()
    error = capsys.readouterr().err.strip().splitlines()
    assert (code, len(error)) == (1, 1)
    assert "the database is busy" in error[0] and "trying again is safe" in error[0]
    assert api.is_empty(api.open_engine(url))


def _stderr_of(args: list[str], *, terminal: bool) -> str:
    """Run the CLI in a child process with stderr on a pseudo-terminal or a pipe; return what it wrote there."""
    import os
    import pty

    command = [sys.executable, "-m", "manager", *args]
    if not terminal:
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False).stderr
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait()
    os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.parametrize(
    "command", [["verify"], ["rebuild-rollups"], ["seed-demo", "--requests", "3000", "--days", "2"]]
)
def test_long_work_shows_progress_on_a_terminal_only(db_url: str, engine: Engine, command: list[str]) -> None:
    api.ingest_records(engine, generated_records(500))
    shown = _stderr_of(["--db", db_url, *command], terminal=True)
    assert "rows/s" in shown
    assert "rows/s" not in _stderr_of(["--db", db_url, *command], terminal=False)
    assert "rows/s" not in _stderr_of(["--db", db_url, *command, "--json"], terminal=True)
