"""Every command given bad arguments ends in one `redline: error [CODE] ...` line, exit 2.

Never a traceback, and never a side effect first: the checks run before Spark, Kafka or
any folder is touched (the state folder here is empty and no service runs).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from redline.cli import build_parser, main

ERROR_LINE = re.compile(r"^redline: error \[[A-Z_]+\] \S")


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.choices and isinstance(a.choices, dict))
    return sorted(sub.choices)


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("REDLINE_HOME", str(home))
    monkeypatch.delenv("REDLINE_PROFILE", raising=False)
    return home


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's errors exit
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_every_command_is_covered():
    assert set(_commands()) >= {"up", "down", "status", "config", "simulate", "ingest",
                                "replay", "quarantine", "lake", "jobs", "quality", "ml",
                                "dashboards", "sql", "demo", "alerts"}


@pytest.mark.parametrize("command", _commands())
def test_unknown_option_is_a_usage_error(command, empty_home, capsys):
    rc, out = _run([command, "--no-such-option"], capsys)
    assert rc == 2
    assert "Traceback" not in out
    assert out.strip().splitlines()[-1].startswith("redline: error [USAGE] redline")


BAD = [
    (["up", "nope"], "SERVICE_UNKNOWN"),
    (["down", "kafka", "nope"], "SERVICE_UNKNOWN"),
    (["ingest", "--topics", "../../x"], "TOPIC_UNKNOWN"),
    (["ingest", "status", "--topics", "nope"], "TOPIC_UNKNOWN"),
    (["ingest", "bogus"], "USAGE"),
    (["simulate", "--vehicles", "-1"], "USAGE"),
    (["simulate", "--days", "abc"], "USAGE"),
    (["simulate", "--rate", "-5"], "USAGE"),
    (["demo", "--vehicles", "0"], "USAGE"),
    (["replay", "nope"], "USAGE"),
    (["replay", "cmapss", "--limit", "0"], "USAGE"),
    (["replay", "cmapss", "--files", "../../etc/passwd"], "REPLAY_FILE_MISSING"),
    (["quarantine", "replay", "--table", "nope"], "TABLE_UNKNOWN"),
    (["quarantine", "list", "--limit", "-3"], "USAGE"),
    (["lake", "compact", "nope.x"], "TABLE_UNKNOWN"),
    (["quality", "gate", "--as-of", "-1"], "USAGE"),
    (["ml", "train", "nope"], "USAGE"),
    (["ml", "review-queue", "--top", "0"], "USAGE"),
    (["dashboards", "screenshot", "--dashboard", "nope", "--out", "x.png"],
     "DASHBOARD_UNKNOWN"),
    (["sql"], "USAGE"),
    (["alerts", "--since", "yesterday", "--dry-run"], "ALERTS_SINCE"),
    (["--profile", "nope", "status"], "CONFIG_PROFILE"),
    (["pipeline", "stop"], "USAGE"),
    (["bogus"], "USAGE"),
]


@pytest.mark.parametrize("argv,code", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_give_one_error_line(argv, code, empty_home, capsys):
    rc, out = _run(argv, capsys)
    assert "Traceback" not in out
    assert rc == 2, out
    last = out.strip().splitlines()[-1]
    assert ERROR_LINE.match(last), last
    assert last.startswith(f"redline: error [{code}]"), last
    # Refused before any side effect: nothing but the (private) state folder itself.
    made = sorted(p.relative_to(empty_home).as_posix() for p in empty_home.rglob("*"))
    assert [m for m in made if not m.startswith("secrets")] == [], made


def test_the_installed_command_prints_no_traceback(empty_home):
    """The console script, not just ``main``: what a user's shell shows."""
    result = subprocess.run([sys.executable, "-m", "redline.cli", "demo", "--vehicles", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("redline: error [USAGE]")
