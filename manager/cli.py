"""The command line: `python -m manager [--db URL] COMMAND`, a thin skin over the Python API."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from manager import (
    api,
    budgets,
    demo,
    digest,
    explorer,
    export,
    health,
    health_rules,
    overview,
    schema,
    selection,
    spend,
    whatif,
    window,
)
from manager.alerts import channels, events, watch
from manager.errors import DatabaseBusy, InvalidInput, ManagerError, NotFound, UnusableFile
from manager.export import EXPORT_KINDS
from manager.integrations import litellm_config
from manager.ledger import ingest, receiver, verify
from manager.ledger.attribution import DIMENSIONS
from manager.ledger.formats import FORMATS
from manager.ledger.ingest import FILE_BATCH_SIZE, IngestStopped
from manager.ledger.validate import parse_timestamp

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE, EXIT_PARTIAL = 0, 1, 2, 3


class ProgressBar:
    """A one-line progress bar on stderr (rows, rows/s, time left when the total is known), drawn only when
    stderr is a terminal and the output is not JSON."""

    def __init__(self, total: int | None, label: str, *, as_json: bool = False):
        self.total, self.label = total, label
        self.active = sys.stderr.isatty() and not as_json
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int) -> None:
        if not self.active:
            return
        now = time.monotonic()
        if now - self.drawn < 0.1 and done != self.total:
            return
        self.drawn = now
        rate = done / max(now - self.started, 1e-6)
        text = f"{done:,} rows, {rate:,.0f} rows/s"
        if self.total:
            filled = int(30 * min(done, self.total) / self.total)
            left = max(self.total - done, 0) / rate if rate else 0.0
            bar = "#" * filled + "." * (30 - filled)
            text = f"[{bar}] {done:,}/{self.total:,} rows, {rate:,.0f} rows/s, {left:,.0f} s left"
        sys.stderr.write(f"\r{self.label} {text}\033[K")
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.active:
            sys.stderr.write("\n")


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def _print(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    print(json.dumps(data, indent=2, default=_json_value) if as_json else text(data))


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def _parse_assignment(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise InvalidInput([f"{text!r}: expected FIELD=VALUE"])
    field, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return field.strip(), value


def cmd_init(engine: Engine, args: argparse.Namespace) -> int:
    added = schema.initialize(engine)
    _print(
        {"models_added": added}, args.json, lambda d: f"schema is current; {d['models_added']} default model(s) added"
    )
    return EXIT_OK


def cmd_seed_demo(engine: Engine, args: argparse.Namespace) -> int:
    if (args.if_empty or args.top_up) and not api.is_empty(engine):
        topped = demo.top_up(engine, seed=args.seed) if args.top_up else None
        if topped is not None:
            _print(
                {**topped.as_dict(), "topped_up": True},
                args.json,
                lambda d: f"demo traffic topped up to now: {d['accepted']:,} requests added",
            )
            return EXIT_OK
        _print(
            {"accepted": 0, "skipped": "the database already holds requests"},
            args.json,
            lambda d: "the database already holds requests; no demo data added",
        )
        return EXIT_OK
    bar = ProgressBar(args.requests, "seeding", as_json=args.json)
    result = demo.seed_demo(
        engine, days=args.days, requests=args.requests, seed=args.seed, progress=bar, with_budgets=not args.no_budgets
    )
    bar.close()
    _print(
        result.as_dict(), args.json, lambda d: f"{d['accepted']:,} requests stored, {d['duplicates']:,} already there"
    )
    return EXIT_OK


def _rows_per_batch(value: str) -> int:
    try:
        rows = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 100 <= rows <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{value!r} is not from 100 to 1,000,000")
    return rows


def cmd_ingest(engine: Engine, args: argparse.Namespace) -> int:
    bar = ProgressBar(None, "ingesting", as_json=args.json)
    result = ingest.ingest_file(engine, args.file, fmt=args.format, batch_size=args.batch_rows, progress=bar)
    bar.close()
    summary = result.as_dict()
    _print(
        summary,
        args.json,
        lambda d: (
            f"{d['accepted']:,} accepted, {d['rejected']:,} rejected, {d['duplicates']:,} duplicates"
            + (f"; rejects in {d['rejects_file']}" if d["rejects_file"] else "")
        ),
    )
    for reject in result.rejects[:5] if not args.json else []:
        print(f"{args.file}: line {reject.line}, column {reject.column}: {reject.reason}", file=sys.stderr)
    return EXIT_PARTIAL if result.rejected else EXIT_OK


def _model_line(row: dict[str, Any]) -> str:
    return f"{row['model_id']:<28} {row['provider']:<10} {row['status']:<12} {row['category']:<13} {row['price']}"


def cmd_models(engine: Engine, args: argparse.Namespace) -> int:
    action = args.models_action
    if action == "list":
        rows = api.list_models(engine)
        _print(rows, args.json, lambda rs: "\n".join(_model_line(r) for r in rs) or "no models")
    elif action == "show":
        _print(api.get_model(engine, args.model_id), True, str)
    elif action == "set":
        changes = dict(_parse_assignment(a) for a in args.assignments)
        row = api.update_model(engine, args.model_id, changes, actor=args.actor)
        _print(row, args.json, lambda r: f"updated {r['model_id']}")
    elif action == "add":
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
        rows = data if isinstance(data, list) else [data]
        added = api.add_models(engine, rows, actor=args.actor)
        _print(added, args.json, lambda rs: "added " + ", ".join(r["model_id"] for r in rs))
    else:
        api.remove_model(engine, args.model_id, actor=args.actor)
        _print({"removed": args.model_id}, args.json, lambda d: f"removed {d['removed']}")
    return EXIT_OK


def _parse_moment(value: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 timestamp") from None


MAX_WINDOW = timedelta(days=365)


def _parse_window(value: str) -> timedelta:
    units = {"m": 60, "h": 3600, "d": 86400}
    number, unit = value[:-1], value[-1:].lower()
    try:
        seconds = float(number) * units[unit]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"{value!r} is not a window such as 30m, 1h or 2d") from None
    if not 0 < seconds <= MAX_WINDOW.total_seconds():
        raise argparse.ArgumentTypeError(f"{value!r} is not a window from 1m to {MAX_WINDOW.days} days")
    return timedelta(seconds=seconds)


def _budget_line(b: dict[str, Any]) -> str:
    limits = f"warn {b['warn_threshold']:g}, alert {b['alert_threshold']:g}" + (", hard" if b["hard"] else "")
    return f"{b['name']:<20} {b['scope']:<28} {b['period']:<8} ${b['amount_usd']:,.2f} ({limits})"


def _status_line(s: dict[str, Any]) -> str:
    return (
        f"{s['name']:<20} {s['state']:<9} ${s['spent_usd']:,.2f} of ${s['amount_usd']:,.2f} "
        f"({s['percent']:.0%}), forecast ${s['forecast_usd']:,.2f} by {s['period_end'][:10]}"
    )


def cmd_budgets(engine: Engine, args: argparse.Namespace) -> int:
    action = args.budgets_action
    if action == "add":
        data = {
            "name": args.name,
            "scope": args.scope,
            "period": args.period,
            "amount_usd": args.amount,
            "warn_threshold": args.warn,
            "alert_threshold": args.alert,
            "hard": args.hard,
        }
        _print(api.add_budget(engine, data, actor=args.actor), args.json, lambda b: "added " + _budget_line(b))
    elif action == "list":
        _print(api.list_budgets(engine), args.json, lambda bs: "\n".join(map(_budget_line, bs)) or "no budgets")
    elif action == "remove":
        api.remove_budget(engine, args.name, actor=args.actor)
        _print({"removed": args.name}, args.json, lambda d: f"removed {d['removed']}")
    else:
        statuses = [s.as_dict() for s in budgets.budget_status(engine, args.at)]
        _print(statuses, args.json, lambda ss: "\n".join(map(_status_line, ss)) or "no budgets")
    return EXIT_OK


def _account_line(a: dict[str, Any]) -> str:
    seen = a["last_sign_in_at"].strftime("%Y-%m-%d %H:%M") if a["last_sign_in_at"] else "never"
    locked = f", locked until {a['locked_until']:%Y-%m-%d %H:%M} UTC" if a["locked_until"] else ""
    return f"{a['name']:<24} {a['role']:<7} last sign-in {seen}{locked}"


def _password_from_stdin() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def cmd_users(engine: Engine, args: argparse.Namespace) -> int:
    action, actor = args.users_action, getattr(args, "actor", "cli")
    if action == "add":
        account = api.add_account(engine, args.name, args.role, _password_from_stdin().rstrip("\r"), actor=actor)
        _print(account, args.json, lambda a: "added " + _account_line(a))
    elif action == "list":
        _print(api.list_accounts(engine), args.json, lambda accs: "\n".join(map(_account_line, accs)) or "no accounts")
    elif action == "remove":
        api.remove_account(engine, args.name, actor=actor)
        _print({"removed": args.name}, args.json, lambda d: f"removed {d['removed']}")
    elif action == "set-role":
        _print(api.set_account_role(engine, args.name, args.role, actor=actor), args.json, _account_line)
    elif action == "set-password":
        password = _password_from_stdin().rstrip("\r")
        _print(api.set_account_password(engine, args.name, password, actor=actor), args.json, _account_line)
    else:
        _print(api.unlock_account(engine, args.name, actor=actor), args.json, _account_line)
    return EXIT_OK


def _channel_line(c: dict[str, Any]) -> str:
    secret = ", signed" if c.get("secret") and c["kind"] == "webhook" else ""
    via = f" via {c['smtp_host']}:{c['smtp_port']}" if c["kind"] == "email" else ""
    return f"{c['name']:<20} {c['kind']:<8} {c['target']}{via}{secret}"


def cmd_channels(engine: Engine, args: argparse.Namespace) -> int:
    action = args.channels_action
    if action == "add":
        secret = None
        if args.secret_stdin:
            secret = _password_from_stdin().rstrip("\r") or None
        elif args.secret_env:
            secret = os.environ.get(args.secret_env) or None
            if secret is None:
                raise InvalidInput([f"secret: the environment variable {args.secret_env} is not set"])
        data = {
            "name": args.name,
            "kind": args.kind,
            "target": args.target,
            "secret": secret,
            "smtp_host": args.smtp_host,
            "smtp_port": args.smtp_port,
            "smtp_user": args.smtp_user,
            "sender": args.sender,
            "ca_file": args.ca_file,
        }
        _print(api.add_channel(engine, data, actor=args.actor), args.json, lambda c: "added " + _channel_line(c))
    elif action == "list":
        found = api.list_channels(engine)
        _print(found, args.json, lambda cs: "\n".join(map(_channel_line, cs)) or "no alert channels")
    elif action == "remove":
        api.remove_channel(engine, args.name, actor=args.actor)
        _print({"removed": args.name}, args.json, lambda d: f"removed {d['removed']}")
    else:
        api.test_channel(engine, args.name)
        _print({"sent": args.name}, args.json, lambda d: f"sent a test message to {d['sent']}")
    return EXIT_OK


def _event_line(e: dict[str, Any]) -> str:
    told = ", ".join(f"{d['channel']} {d['status']}" for d in e["deliveries"]) or "no channel"
    return f"{e['recorded_at'][:16]}  {e['subject']}  [{told}]"


def cmd_alerts(engine: Engine, args: argparse.Namespace) -> int:
    action = args.alerts_action
    if action == "send":
        result = api.send_alerts(engine)
        _print(result, args.json, lambda r: f"{r['delivered']} delivered, {r['failed']} failed, {r['pending']} pending")
    elif action == "list":
        if not 1 <= args.limit <= 10_000:
            raise InvalidInput([f"--limit: {args.limit} is not from 1 to 10,000"])
        _print(events.recent(engine, args.limit), args.json, lambda es: "\n".join(map(_event_line, es)) or "no alerts")
    elif action == "check":
        new = watch.check(engine)
        _print({"recorded": new}, args.json, lambda d: f"recorded {d['recorded']} health and spend events")
    else:
        if not args.interval >= 1:
            raise InvalidInput([f"--interval: {args.interval!r} is not a number of seconds, 1 or more"])
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(f"watching budgets, health and spend every {args.interval:g} s; Ctrl-C stops", file=sys.stderr)
        try:
            watch.run(engine, interval=args.interval, stop=stop)
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def _digest_text(data: dict[str, Any], lines: dict[str, str]) -> str:
    return "\n".join([data["subject"], *(f"{name}: {text}" for name, text in lines.items())])


def cmd_digest(engine: Engine, args: argparse.Namespace) -> int:
    found = digest.build(engine, args.period)
    data = found.as_dict() | {"subject": found.subject()}
    if args.send:
        data["sent"] = digest.send(engine, found, args.send)
    _print(data, args.json, lambda d: _digest_text(d, found.lines()))
    return EXIT_OK


def cmd_health(engine: Engine, args: argparse.Namespace) -> int:
    thresholds = health_rules.HealthThresholds(window=args.window)
    models = health.model_health(engine, thresholds=thresholds, live_probe=args.probe)
    _print(
        [m.as_dict() for m in models],
        args.json,
        lambda ms: "\n".join(f"{m['model_id']:<28} {m['status']:<12} {m['reason']}" for m in ms),
    )
    return EXIT_OK


def _policy(args: argparse.Namespace) -> selection.Policy:
    weights = dict(_parse_assignment(w) for w in args.weight)
    bad = [
        f"weight {k!r}: {v!r} is not a number"
        for k, v in weights.items()
        if isinstance(v, bool) or not isinstance(v, int | float)
    ]
    if bad:
        raise InvalidInput(bad)
    return selection.Policy(
        category=args.category,
        language=args.language,
        max_cost_per_1k=args.max_cost_per_1k,
        max_p95_ms=args.max_p95_ms,
        min_quality=args.min_quality,
        include_experimental=args.experimental,
        weights=weights,
    )


def _selection_text(data: dict[str, Any]) -> str:
    lines = [f"{i}. {r['model_id']:<28} {r['score']:.3f}" for i, r in enumerate(data["ranking"], start=1)]
    lines += [f"   excluded {e['model_id']}: {e['reason']}" for e in data["excluded"]]
    return "\n".join(lines) or "no models"


def cmd_select(engine: Engine, args: argparse.Namespace) -> int:
    whose = {
        "user": args.user,
        "team": args.team,
        "api_key": args.api_key,
        "app": args.app,
        "environment": args.environment,
        "tags": args.tag or None,
    }
    _print(api.select_model(engine, _policy(args), **whose).as_dict(args.top), args.json, _selection_text)
    return EXIT_OK


def _replay_text(data: dict[str, Any]) -> str:
    actual, projected, change = data["actual"], data["projected"], data["change_pct"]
    lines = [
        f"cost: ${actual['cost_usd']:,.2f} actual, ${projected['cost_usd']:,.2f} projected"
        + (f" ({change['cost_usd']:+.1f}%)" if change["cost_usd"] is not None else "")
    ]
    lines += [
        f"{s['request_type']}/{s['language']}: {s['chosen_model']} ${s['projected_cost_usd']:,.4f}"
        for s in data["segments"]
    ]
    lines += [
        f"budget {b['name']}: " + ("holds" if b["held_projected"] else "would be exceeded") for b in data["budgets"]
    ]
    return "\n".join(lines)


def cmd_whatif(engine: Engine, args: argparse.Namespace) -> int:
    span = window.data_span(engine)
    today = datetime.now().date()
    start = args.date_from or (span[0] if span else today)
    end = args.date_to or (span[1] if span else today)
    result = whatif.replay_between(engine, start, end, _policy(args))
    if args.routes:
        Path(args.routes).write_text(json.dumps(whatif.routing_table(result), indent=2), encoding="utf-8")
    _print(result.as_dict(), args.json, _replay_text)
    return EXIT_OK


def cmd_serve_otlp(engine: Engine, args: argparse.Namespace) -> int:
    token = os.environ.get("MANAGER_OTLP_TOKEN") or None
    if reason := receiver.refuse_open_binding(args.host, token):
        raise InvalidInput([reason])
    server, tally = receiver.make_server(engine, args.host, args.port, token)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"receiving OTLP/HTTP traces at http://{host}:{port}/v1/traces (Ctrl-C stops)", file=sys.stderr)
    # SIGTERM (a service manager, a container stop) ends the loop as Ctrl-C does; shutdown() waits for the
    # loop, so it runs on a thread of its own. A batch being written finishes or rolls back, never half.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    _print(
        dict(tally.__dict__),
        args.json,
        lambda d: (
            f"stopped: {d['accepted']:,} spans stored, {d['duplicates']:,} already there, "
            f"{d['rejected']:,} refused, {d['skipped']:,} not GenAI spans, over {d['requests']:,} export requests"
        ),
    )
    return EXIT_OK


def _scan_bar(engine: Engine, args: argparse.Namespace, label: str) -> ProgressBar:
    bar = ProgressBar(None, label, as_json=args.json)
    if bar.active:
        bar.total = verify.log_rows(engine)
    return bar


def cmd_verify(engine: Engine, args: argparse.Namespace) -> int:
    bar = _scan_bar(engine, args, "verifying")
    drift = [d.as_dict() for d in verify.verify(engine, progress=bar)]
    bar.close()
    _print(
        {"drift": drift, "ok": not drift},
        args.json,
        lambda d: (
            "rollups agree with the request log"
            if d["ok"]
            else "\n".join(
                f"{x['table']} {x['key']} {x['field']}: stored {x['stored']}, expected {x['expected']}"
                for x in d["drift"]
            )
        ),
    )
    return EXIT_OK if not drift else 1


def cmd_rebuild(engine: Engine, args: argparse.Namespace) -> int:
    bar = _scan_bar(engine, args, "rebuilding")
    rows = verify.rebuild_rollups(engine, progress=bar)
    bar.close()
    _print({"rollup_rows": rows}, args.json, lambda d: f"rebuilt {d['rollup_rows']:,} rollup rows from the request log")
    return EXIT_OK


LITELLM_CONFIG = "litellm-config"
_POLICY_FLAGS = ("category", "language", "max_cost_per_1k", "max_p95_ms", "min_quality", "weight", "experimental")


def cmd_export(engine: Engine, args: argparse.Namespace) -> int:
    if args.by is not None and args.kind != "spend":
        raise InvalidInput([f"--by goes with export spend, not export {args.kind}"])
    if args.kind == LITELLM_CONFIG:
        return _export_litellm_config(engine, args)
    given = [f"--{name.replace('_', '-')}" for name in _POLICY_FLAGS if getattr(args, name)]
    if given:
        raise InvalidInput([f"{', '.join(given)}: only with export {LITELLM_CONFIG}, not export {args.kind}"])
    if args.kind == "spend" and args.by is not None:
        return _export_spend(engine, args)
    text = export.export_csv(engine, args.kind, start=args.date_from, end=args.date_to)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _write_whole(out: str, text: str) -> None:
    """Write text to a file whole or not at all (through a partial file beside it)."""
    target = Path(out)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
    except OSError as error:
        raise UnusableFile(f"cannot write {out}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)


def _export_litellm_config(engine: Engine, args: argparse.Namespace) -> int:
    """Write the policy as a LiteLLM config: its live ranking, and the routes its replay of the days gives."""
    span = window.data_span(engine)
    today = datetime.now(UTC).date()
    start = args.date_from or (span[0] if span else today)
    end = args.date_to or (span[1] if span else today)
    text = litellm_config.export_config(engine, _policy(args), start, end)
    if args.out:
        _write_whole(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _export_spend(engine: Engine, args: argparse.Namespace) -> int:
    """Stream spend per day, value and model as CSV to --out (written whole or not at all) or standard output."""
    if not args.out:
        export.write_spend_csv(engine, sys.stdout, args.by, start=args.date_from, end=args.date_to)
        return EXIT_OK
    target = Path(args.out)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            rows = export.write_spend_csv(engine, handle, args.by, start=args.date_from, end=args.date_to)
        partial.replace(target)
    except OSError as error:
        raise UnusableFile(f"cannot write {args.out}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {rows:,} rows to {args.out}", file=sys.stderr)
    return EXIT_OK


def _overview_text(data: dict[str, Any]) -> str:
    lines = [
        f"{data['from']} to {data['to']} (UTC): {data['total_requests']:,} requests, ${data['total_cost_usd']:,.2f}"
    ]
    if data["success_rate"] is not None:
        lines[0] += f", {data['success_rate']:.2%} succeeded"
    lines += [f"top {p['rank']}: {p['model_id']} (score {p['score']:.3f})" for p in data["top_performers"]]
    lines += [f"- {r['model_id']}: {r['action']} ({r['evidence']})" for r in data["recommendations"]]
    if "by" in data:
        rows = data["rows"]
        lines.append(f"by {data['by']}: {len(rows):,} values" + (", the top 10:" if len(rows) > 10 else ":"))
        lines += [f"  {r['value']}: ${r['cost_usd']:,.2f}, {r['requests']:,} requests" for r in rows[:10]]
        if data["unattributed"] and data["unattributed"]["requests"]:
            none = data["unattributed"]
            lines.append(f"  (no {data['by']}): ${none['cost_usd']:,.2f}, {none['requests']:,} requests")
    return "\n".join(lines)


def _parse_bound(value: str) -> tuple[datetime, bool]:
    """Return a --from/--to of the explorer as a UTC time, and whether it was a date alone."""
    try:
        if len(value.strip()) <= 10:
            day = date.fromisoformat(value.strip())
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        return _parse_moment(value), False
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None


def _request_filters(args: argparse.Namespace) -> explorer.RequestFilters:
    end = None
    if args.date_to is not None:
        # A date alone means the whole of that day.
        end = args.date_to[0] + timedelta(days=1) if args.date_to[1] else args.date_to[0]
    return explorer.RequestFilters(
        start=args.date_from[0] if args.date_from else None,
        end=end,
        models=tuple(args.model),
        providers=tuple(args.provider),
        success=False if args.failed else True if args.succeeded else None,
        error_types=tuple(args.error_type),
        request_types=tuple(args.request_type),
        languages=tuple(args.language),
        min_latency_ms=args.min_latency_ms,
        users=tuple(args.user),
        teams=tuple(args.team),
        api_keys=tuple(args.api_key),
        apps=tuple(args.app),
        environments=tuple(args.environment),
        tags=tuple(args.tag),
    )


def _requests_text(page: dict[str, Any]) -> str:
    lines = [
        f"{r['timestamp'][:19]}  {r['model_id']:<26} {'ok' if r['success'] else (r['error_type'] or 'failed'):<14} "
        f"{r['response_time_ms']:>9,.0f} ms  {r['request_id']}"
        for r in page["rows"]
    ]
    lines.append(f"next page: --after {page['next']}" if page["next"] else f"{len(page['rows'])} request(s), no more")
    return "\n".join(lines)


def cmd_requests(engine: Engine, args: argparse.Namespace) -> int:
    filters = _request_filters(args)
    if args.limit is not None and args.limit < 1:
        raise InvalidInput([f"--limit: {args.limit} is not a number of rows (1 or more)"])
    if args.csv:
        for chunk in explorer.requests_csv(engine, filters, max_rows=args.limit or explorer.CSV_LIMIT):
            sys.stdout.write(chunk)
        return EXIT_OK
    page = explorer.find_requests(engine, filters, limit=args.limit or explorer.PAGE_SIZE, after=args.after)
    _print(page.as_dict(), args.json, _requests_text)
    return EXIT_OK


def cmd_report(engine: Engine, args: argparse.Namespace) -> int:
    data = overview.report(engine, args.date_from, args.date_to).as_dict()
    if args.by is not None and data["from"] is not None:
        data |= spend.report_by(engine, args.by, date.fromisoformat(data["from"]), date.fromisoformat(data["to"]))
    elif args.by is not None:
        data |= {"by": args.by, "rows": [], "unattributed": None}
    _print(data, args.json, _overview_text)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command and its help."""
    parser = argparse.ArgumentParser(prog="python -m manager", description="Operate the AI model manager.")
    parser.add_argument("--db", help="database URL (default: $DATABASE_URL, else sqlite:///data/manager.db)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an unexpected failure")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")
    writer = argparse.ArgumentParser(add_help=False, parents=[as_json])
    writer.add_argument("--actor", default="cli", help="who the audit log records (default: cli)")

    def command(
        name: str,
        help_text: str,
        handler: Callable[[Engine, argparse.Namespace], int],
        parents: Sequence[argparse.ArgumentParser] = (as_json,),
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=list(parents))
        sub.set_defaults(handler=handler)
        return sub

    command("init", "create or upgrade the schema and load the default models", cmd_init)
    seed = command("seed-demo", "store realistic demo traffic, reproducible by seed", cmd_seed_demo)
    seed.add_argument("--days", type=int, default=30, help="days of traffic ending now (default 30)")
    seed.add_argument("--requests", type=int, default=20_000, help="number of requests (default 20000)")
    seed.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when any request is already stored")
    seed.add_argument(
        "--top-up",
        action="store_true",
        help="seed an empty database; when the newest stored request is demo traffic, add demo traffic up to now",
    )
    seed.add_argument(
        "--no-budgets", action="store_true", help="do not add the demo budgets (added only when none exist)"
    )
    ingest = command("ingest", "load request logs from CSV, JSON Lines or OTLP/JSON", cmd_ingest)
    ingest.add_argument("file", type=Path, help="the file to load")
    ingest.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="input format (default: detect; litellm: LiteLLM's spend log as CSV or JSON)",
    )
    ingest.add_argument(
        "--batch-rows",
        type=_rows_per_batch,
        default=FILE_BATCH_SIZE,
        help=f"rows per transaction (default {FILE_BATCH_SIZE:,}); fewer hold the write lock for less time",
    )

    models = command("models", "list, show, change, add or remove registry models", cmd_models, parents=())
    actions = models.add_subparsers(dest="models_action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help_text, description=help_text, parents=[parent])

    action("list", "list every model", as_json)
    action("show", "show one model as JSON", as_json).add_argument("model_id")
    setter = action("set", "change fields: FIELD=VALUE (JSON values where they parse, else text)", writer)
    setter.add_argument("model_id")
    setter.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    action("add", "add models from a JSON file (an object or a list of them)", writer).add_argument(
        "--file", required=True, help="JSON file with the new models"
    )
    action("remove", "remove a model (its request history stays)", writer).add_argument("model_id")

    budgets = command("budgets", "add, list, remove budgets and show where they stand", cmd_budgets, parents=())
    budget_actions = budgets.add_subparsers(dest="budgets_action", required=True, metavar="ACTION")
    adder = budget_actions.add_parser("add", help="add a budget", description="add a budget", parents=[writer])
    adder.add_argument("--name", required=True, help="a unique name")
    adder.add_argument(
        "--scope",
        required=True,
        help="global, provider:NAME, model:ID, category:NAME, or team:, user:, api_key:, app:, environment:, tag:NAME",
    )
    adder.add_argument("--period", required=True, choices=["daily", "weekly", "monthly"], help="UTC period")
    adder.add_argument("--amount", required=True, type=float, help="amount in USD")
    adder.add_argument("--warn", type=float, default=0.8, help="warning threshold, a fraction (default 0.8)")
    adder.add_argument("--alert", type=float, default=1.0, help="alert threshold, a fraction (default 1.0)")
    adder.add_argument("--hard", action="store_true", help="exclude the scope's models from selection once spent")
    budget_actions.add_parser("list", help="list budgets", description="list budgets", parents=[as_json])
    budget_actions.add_parser(
        "remove", help="remove a budget", description="remove a budget", parents=[writer]
    ).add_argument("name")
    status = budget_actions.add_parser(
        "status",
        help="spend, forecast, state and alerts of each budget",
        description="spend, forecast, state and alerts of each budget",
        parents=[as_json],
    )
    status.add_argument("--at", type=_parse_moment, help="moment to evaluate (ISO-8601; default now)")

    alert_channels = command("channels", "where alerts go: webhooks, Slack, email", cmd_channels, parents=())
    channel_actions = alert_channels.add_subparsers(dest="channels_action", required=True, metavar="ACTION")
    adding = channel_actions.add_parser(
        "add", help="add an alert channel", description="add an alert channel", parents=[writer]
    )
    adding.add_argument("--name", required=True, help="a unique name")
    adding.add_argument("--kind", required=True, choices=list(channels.KINDS), help="how it is told")
    adding.add_argument("--target", required=True, help="the webhook URL, or the email address")
    secret = adding.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-stdin", action="store_true", help="read the webhook signing key or SMTP password from standard input"
    )
    secret.add_argument("--secret-env", help="read the webhook signing key or SMTP password from this variable")
    adding.add_argument("--smtp-host", help="email: the SMTP server (STARTTLS is required)")
    adding.add_argument("--smtp-port", type=int, help="email: its port (default 587)")
    adding.add_argument("--smtp-user", help="email: the user to sign in as (password from --secret-*)")
    adding.add_argument("--from", dest="sender", help="email: the sender address")
    adding.add_argument("--ca-file", help="email: CA certificates to trust for the server's TLS certificate")
    channel_actions.add_parser("list", help="list the channels", description="list the channels", parents=[as_json])
    channel_actions.add_parser(
        "remove", help="remove a channel", description="remove a channel", parents=[writer]
    ).add_argument("name")
    channel_actions.add_parser(
        "test", help="send a test message now", description="send a test message now", parents=[as_json]
    ).add_argument("name")

    alert = command("alerts", "the alerts recorded and their delivery", cmd_alerts, parents=())
    alert_actions = alert.add_subparsers(dest="alerts_action", required=True, metavar="ACTION")
    alert_actions.add_parser(
        "send", help="deliver what is due (for cron)", description="deliver what is due", parents=[as_json]
    )
    listed = alert_actions.add_parser(
        "list", help="events and their deliveries", description="events and their deliveries", parents=[as_json]
    )
    listed.add_argument("--limit", type=int, default=100, help="newest N events (default 100)")
    alert_actions.add_parser(
        "check",
        help="evaluate budgets, health and spend now, recording new events",
        description="evaluate budgets, health and spend now, recording new events",
        parents=[as_json],
    )
    watching = alert_actions.add_parser(
        "watch",
        help="check and send every interval until stopped (the dashboard's start script runs it)",
        description="check and send every interval until stopped",
    )
    watching.add_argument("--interval", type=float, default=60.0, help="seconds between rounds (default 60)")

    summary = command(
        "digest", "spend by team and model against the period before, movers, risks, incidents", cmd_digest
    )
    summary.add_argument(
        "--period", choices=list(digest.PERIODS), default="weekly", help="the last whole week or month"
    )
    summary.add_argument("--send", metavar="CHANNEL", help="also send it to this alert channel")

    users = command("users", "manage dashboard accounts and their roles", cmd_users, parents=())
    user_actions = users.add_subparsers(dest="users_action", required=True, metavar="ACTION")

    def user_action(name: str, help_text: str, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return user_actions.add_parser(name, help=help_text, description=help_text, parents=[parent])

    roles = ["viewer", "editor", "admin"]
    password_help = "read the password from the first line of standard input (8 to 1024 characters)"
    user_add = user_action("add", "add an account; the first one must be an admin", writer)
    user_add.add_argument("name", help="1 to 64 letters, digits, '.', '_', '@' or '-' (case-insensitive)")
    user_add.add_argument("--role", required=True, choices=roles, help="viewer, editor or admin")
    user_add.add_argument("--password-stdin", action="store_true", required=True, help=password_help)
    user_action("list", "list accounts (never their passwords)", as_json)
    user_action("remove", "remove an account", writer).add_argument("name")
    role_setter = user_action("set-role", "change an account's role", writer)
    role_setter.add_argument("name")
    role_setter.add_argument("role", choices=roles)
    password_setter = user_action("set-password", "replace an account's password (also lifts a lockout)", writer)
    password_setter.add_argument("name")
    password_setter.add_argument("--password-stdin", action="store_true", required=True, help=password_help)
    user_action("unlock", "lift an account's sign-in lockout", writer).add_argument("name")

    health = command("health", "health of every model over a trailing window, with reasons", cmd_health)
    health.add_argument("--window", type=_parse_window, default=timedelta(hours=1), help="e.g. 30m, 1h, 2d")
    health.add_argument("--probe", action="store_true", help="also probe local models' base_url (2 s timeout)")

    policy = argparse.ArgumentParser(add_help=False)
    policy.add_argument("--category", help="request category the model must serve")
    policy.add_argument("--language", help="language the model must support")
    policy.add_argument("--max-cost-per-1k", type=float, help="price ceiling in USD per 1k tokens (blended)")
    policy.add_argument("--max-p95-ms", type=float, help="p95 latency ceiling in ms")
    policy.add_argument("--min-quality", type=float, help="minimum quality, 0 to 1")
    policy.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="NAME=W",
        help=f"weight of a score ({', '.join(selection.WEIGHT_NAMES)}); repeatable",
    )
    policy.add_argument("--experimental", action="store_true", help="also consider experimental models")
    select = command(
        "select", "rank the models for a request under weights and limits", cmd_select, parents=(as_json, policy)
    )
    select.add_argument("--top", type=int, help="show only the best N")
    for flag, what in (
        ("--user", "the end user"),
        ("--team", "the team"),
        ("--api-key", "the API key (alias, or the key: only its fingerprint is used)"),
        ("--app", "the app"),
        ("--environment", "the environment"),
    ):
        select.add_argument(flag, help=f"whose request: {what} (hard budgets on it apply)")
    select.add_argument("--tag", action="append", default=[], help="a tag of the request (repeatable)")
    whatif = command(
        "whatif",
        "replay past traffic under a routing policy: cost, speed, quality, budgets",
        cmd_whatif,
        parents=(as_json, policy),
    )
    whatif.add_argument("--from", dest="date_from", type=_parse_date, help="first UTC date (default: first traffic)")
    whatif.add_argument("--to", dest="date_to", type=_parse_date, help="last UTC date (default: last traffic)")
    whatif.add_argument("--routes", help="also write the routing table (JSON) to this file")

    serve = command("serve-otlp", "receive OTLP/HTTP traces (POST /v1/traces) into the ledger", cmd_serve_otlp)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    serve.add_argument("--port", type=int, default=4318, help="port (default 4318, OTLP/HTTP's own)")

    command("verify", "recompute the rollups from the request log and report any drift (exit 1 if any)", cmd_verify)
    command(
        "rebuild-rollups", "replace the rollups and usage stats with a recomputation from the request log", cmd_rebuild
    )

    report = command("report", "system overview, top performers and recommendations", cmd_report)
    report.add_argument("--from", dest="date_from", type=_parse_date, help="first UTC date (YYYY-MM-DD)")
    report.add_argument("--to", dest="date_to", type=_parse_date, help="last UTC date, inclusive")
    report.add_argument(
        "--by", choices=list(DIMENSIONS), help="add spend by user, team, API key, app, environment or tag"
    )

    found = command("requests", "individual requests, newest first, filtered, a page at a time", cmd_requests)
    found.add_argument("--from", dest="date_from", type=_parse_bound, help="first UTC date or time (inclusive)")
    found.add_argument("--to", dest="date_to", type=_parse_bound, help="last UTC date (inclusive) or time (exclusive)")
    found.add_argument("--model", action="append", default=[], help="model id (repeatable)")
    found.add_argument("--provider", action="append", default=[], help="provider (repeatable)")
    outcome = found.add_mutually_exclusive_group()
    outcome.add_argument("--failed", action="store_true", help="failed requests only")
    outcome.add_argument("--succeeded", action="store_true", help="successful requests only")
    found.add_argument("--error-type", action="append", default=[], help="error type (repeatable)")
    found.add_argument("--request-type", action="append", default=[], help="request type (repeatable)")
    found.add_argument("--language", action="append", default=[], help="language (repeatable)")
    found.add_argument("--min-latency-ms", type=float, help="only requests at least this slow")
    for flag, what in (
        ("--user", "end user"),
        ("--team", "team"),
        ("--api-key", "API key alias or fingerprint"),
        ("--app", "app (OTLP service.name)"),
        ("--environment", "environment"),
        ("--tag", "tag"),
    ):
        found.add_argument(flag, action="append", default=[], help=f"{what} (repeatable)")
    found.add_argument("--limit", type=int, help="rows per page (default 100, at most 1000; with --csv, all rows)")
    found.add_argument("--after", help="the cursor a previous page printed as next")
    found.add_argument("--csv", action="store_true", help="write every matching row as CSV (at most --limit)")

    export = command(
        "export",
        f"write a report as CSV, or ({LITELLM_CONFIG}) the routing policy as a LiteLLM proxy/Router config (YAML)",
        cmd_export,
        parents=(policy,),
    )
    export.add_argument(
        "kind",
        choices=(*EXPORT_KINDS, LITELLM_CONFIG),
        help=f"which report; {LITELLM_CONFIG} takes the policy options of select and whatif",
    )
    export.add_argument("--from", dest="date_from", type=_parse_date, help="first UTC date (YYYY-MM-DD)")
    export.add_argument("--to", dest="date_to", type=_parse_date, help="last UTC date, inclusive")
    export.add_argument("--out", help="output file (default: standard output)")
    export.add_argument(
        "--by", choices=list(DIMENSIONS), help="with spend: one row per UTC day, value of this dimension and model"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code; every failure is one line on standard error."""
    args = build_parser().parse_args(argv)
    try:
        # Only init creates a database; every other command refuses one that is not there.
        engine = api.open_engine(args.db, prepare=args.command != "init", create=args.command == "init")
        return int(args.handler(engine, args))
    except IngestStopped as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_PARTIAL
    except DatabaseBusy as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (InvalidInput, NotFound, UnusableFile, ManagerError, ValueError, OSError) as error:
        if isinstance(error, BrokenPipeError):
            return _closed_pipe()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Exception as error:  # noqa: BLE001 (the one place an unforeseen failure becomes one line)
        if args.debug:
            traceback.print_exc()
        print(f"error: unexpected {type(error).__name__}: {_first_line(error)} (--debug shows where)", file=sys.stderr)
        return EXIT_FAILED


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def _closed_pipe() -> int:
    """The reader of our output went away (`... | head`): stop quietly, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK
