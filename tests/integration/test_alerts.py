"""Alerts against a real HTTP receiver (http.server on 127.0.0.1) and a real Delta lake.

gold.spc_violations rows are written by hand with the catalog's schema; the expected
messages and links below are written by hand too.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from webhook_receiver import Receiver

from redline import catalog
from redline import lake as lake_io
from redline.config import AlertsConfig, LakeConfig
from redline.dashboards import alerts, alerts_cli
from redline.errors import RedlineError

pytestmark = pytest.mark.integration

TOKEN = "T0RECV/B0RECV/s3cr3t-webhook-token-42"
ENV = "REDLINE_TEST_ALERTS_WEBHOOK"
BI = "https://superset.example.test"
VIOLATIONS = catalog.SPC_VIOLATIONS
RULES = {1: "1 point beyond 3 sigma",
         2: "9 points in a row on the same side of the centre line",
         6: "4 of 5 points beyond 1 sigma on the same side"}


@pytest.fixture
def receiver():
    with Receiver(TOKEN) as r:
        yield r


@pytest.fixture
def alerts_cfg(cfg, lake, tmp_path):
    """This test's lake and state folder; the webhook URL in the variable ``ENV``."""
    return dataclasses.replace(
        cfg, home=tmp_path / "home", lake=LakeConfig(root=lake),
        alerts=AlertsConfig(webhook_url_env=ENV, timeout_seconds=5.0, dashboard_url=BI))


def _episode(plant, characteristic, chart, rule, start_seq, end_seq, start, end):
    return {"plant": plant, "line": "L1", "station": "S010", "characteristic": characteristic,
            "chart": chart, "rule": rule, "rule_name": RULES[rule], "start_seq": start_seq,
            "end_seq": end_seq, "start_time": start, "end_time": end,
            "points": end_seq - start_seq + 1,
            "event_ids": [f"e{s}" for s in range(start_seq, end_seq + 1)]}


def _write(spark, lake, rows):
    lake_io.overwrite(spark.createDataFrame(rows, VIOLATIONS.schema()), lake, VIOLATIONS)


def _recorded(spark, lake):
    rows = catalog.read(spark, lake, catalog.SPC_ALERTS).collect()
    return sorted((r.plant, r.chart, r.rule, r.start_seq, r.status, r.http_status)
                  for r in rows)


def _mask(plant, characteristic):
    def one(col, val):
        return (f"NATIVE_FILTER-{col}:(__cache:(label:{val},validateStatus:!f,value:!({val})),"
                f"extraFormData:(filters:!((col:{col},op:IN,val:!({val})))),"
                f"filterState:(label:{val},validateStatus:!f,value:!({val})),"
                f"id:NATIVE_FILTER-{col},ownState:())")

    # The SPC dashboard's one filter: the series plant/line/station/characteristic.
    return "(" + one("series", f"{plant}/L1/S010/{characteristic}") + ")"


def _split(text):
    """(paragraph, link) of a Slack-format message."""
    m = re.fullmatch(r"(.*) <([^|>]+)\|Open the SPC dashboard>", text)
    assert m, text
    return m.group(1), m.group(2)


def _check_link(link, plant, characteristic):
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BI}/superset/dashboard/spc/"
    assert parse_qs(parts.query) == {"native_filters": [_mask(plant, characteristic)]}


T = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
DRIFT = _episode("PLT-A", "bolt_torque_nm", "I", 2, 30, 41, T + timedelta(minutes=30),
                 T + timedelta(minutes=41))
JUMP = _episode("PLT-A", "bolt_torque_nm", "XBAR", 1, 7, 7, T + timedelta(minutes=60),
                T + timedelta(minutes=64))
#: Three days before the others: older than the first run's default cutoff.
OLD = _episode("PLT-B", "gap_mm", "I", 1, 5, 5, T - timedelta(days=3), T - timedelta(days=3))


def test_each_new_episode_is_posted_once(spark, lake, alerts_cfg, receiver):
    env = {ENV: receiver.url}
    lines: list[str] = []
    _write(spark, lake, [DRIFT, JUMP, OLD])

    dry = alerts.post_new(spark, alerts_cfg, progress=lines.append, dry_run=True, env={})
    assert (dry["new"], dry["skipped"], len(dry["episodes"])) == (3, 1, 2)
    assert receiver.requests == []
    assert not catalog.exists(spark, lake, catalog.SPC_ALERTS)

    # First run, no --since: the last 24 h before the newest end (09:04) are posted.
    first = alerts.post_new(spark, alerts_cfg, progress=lines.append, env=env)
    assert (first["new"], first["posted"], first["skipped"], first["since"]) == \
        (3, 2, 1, "2024-04-30T09:04:00+00:00")
    assert [path for path, _ in receiver.requests] == [f"/services/{TOKEN}"] * 2
    drift_text, drift_link = _split(receiver.texts[0])
    assert drift_text == (
        "SPC out of control: bolt_torque_nm at PLT-A/L1/S010, individuals chart, Nelson "
        "rule 2 (9 points in a row on the same side of the centre line): 12 points "
        "(#30-#41), 2024-05-01 08:30:00 to 08:41:00 UTC.")
    _check_link(drift_link, "PLT-A", "bolt_torque_nm")
    jump_text, _ = _split(receiver.texts[1])
    assert jump_text == (
        "SPC out of control: bolt_torque_nm at PLT-A/L1/S010, X-bar chart, Nelson rule 1 "
        "(1 point beyond 3 sigma): 1 subgroup (#7), 2024-05-01 09:00:00 to 09:04:00 UTC.")
    assert [e["text"] for e in dry["episodes"]] == receiver.texts
    assert _recorded(spark, lake) == [
        ("PLT-A", "I", 2, 30, "POSTED", 200), ("PLT-A", "XBAR", 1, 7, "POSTED", 200),
        ("PLT-B", "I", 1, 5, "SKIPPED", None)]
    texts = {r.start_seq: r.text for r in catalog.read(spark, lake, catalog.SPC_ALERTS)
             .collect()}
    assert (texts[30], texts[7], texts[5]) == (*receiver.texts, None)

    # Nothing new: nothing posted, the skipped old episode included.
    again = alerts.post_new(spark, alerts_cfg, progress=lines.append, env=env)
    assert (again["new"], again["posted"]) == (0, 0) and len(receiver.requests) == 2

    # The drift grew (same episode) and a new rule-1 point came.
    grown = {**DRIFT, "end_seq": 45, "points": 16, "end_time": T + timedelta(minutes=45),
             "event_ids": [f"e{s}" for s in range(30, 46)]}
    spike = _episode("PLT-A", "bolt_torque_nm", "I", 1, 50, 50, T + timedelta(minutes=70),
                     T + timedelta(minutes=70))
    _write(spark, lake, [grown, JUMP, OLD, spike])
    third = alerts.post_new(spark, alerts_cfg, progress=lines.append, env=env)
    assert (third["new"], third["posted"], third["skipped"]) == (1, 1, 0)
    assert len(receiver.requests) == 3
    spike_text, spike_link = _split(receiver.texts[2])
    assert spike_text == (
        "SPC out of control: bolt_torque_nm at PLT-A/L1/S010, individuals chart, Nelson "
        "rule 1 (1 point beyond 3 sigma): 1 point (#50), 2024-05-01 09:10:00 UTC.")
    _check_link(spike_link, "PLT-A", "bolt_torque_nm")
    assert len(_recorded(spark, lake)) == 4
    assert not any(TOKEN in line for line in lines)


def test_a_failing_webhook_keeps_what_was_posted_and_the_next_run_posts_the_rest(
        spark, lake, alerts_cfg, receiver, capsys):
    # This time the URL comes from the 0600 secret file.
    cfg = dataclasses.replace(alerts_cfg, alerts=AlertsConfig(dashboard_url=BI))
    secret = cfg.home / "secrets" / alerts.WEBHOOK_SECRET
    secret.parent.mkdir(parents=True)
    secret.touch(mode=0o600)
    secret.write_text(receiver.url + "\n")
    third = _episode("PLT-A", "gap_mm", "I", 6, 12, 16, T + timedelta(minutes=90),
                     T + timedelta(minutes=95))
    _write(spark, lake, [DRIFT, JUMP, third])
    receiver.answers = [200, 500]
    lines: list[str] = []

    with pytest.raises(RedlineError, match=r"ALERTS_WEBHOOK_FAILED.*webhook "
                       r"http://127\.0\.0\.1:\d+ answered HTTP 500: boom at \.\.\.\. Posted 1 "
                       r"of 3 new episode\(s\) \(recorded in ops\.spc_alerts\); the other 2 "
                       r"are posted by the next run") as exc:
        alerts.post_new(spark, cfg, progress=lines.append, since="all", env={})
    assert "s3cr3t" not in str(exc.value) and "T0RECV" not in str(exc.value)
    assert len(receiver.requests) == 2
    assert _recorded(spark, lake) == [("PLT-A", "I", 2, 30, "POSTED", 200)]

    result = alerts.post_new(spark, cfg, progress=lines.append, env={})
    assert (result["new"], result["posted"], result["skipped"]) == (2, 2, 0)
    # The one that failed, then the one never tried; the first is not posted again.
    assert [_split(t)[0].split(",")[1] for t in receiver.texts] == \
        [" individuals chart", " X-bar chart", " X-bar chart", " individuals chart"]
    assert "Nelson rule 6 (4 of 5 points beyond 1 sigma on the same side): 5 points " \
           "(#12-#16)" in receiver.texts[3]
    assert _recorded(spark, lake) == [
        ("PLT-A", "I", 2, 30, "POSTED", 200), ("PLT-A", "I", 6, 12, "POSTED", 200),
        ("PLT-A", "XBAR", 1, 7, "POSTED", 200)]
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err + "\n".join(lines)


def test_a_webhook_that_does_not_answer_or_is_not_there(receiver):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        port = silent.getsockname()[1]
        with pytest.raises(RedlineError, match=r"webhook http://127\.0\.0\.1:\d+ did not "
                                               r"answer within 0\.5 s") as exc:
            alerts.post_message(f"http://127.0.0.1:{port}/services/{TOKEN}", {"text": "x"}, 0.5)
        assert "s3cr3t" not in str(exc.value)
    finally:
        silent.close()
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(RedlineError, match=r"webhook http://127\.0\.0\.1:\d+ could not be "
                                           r"reached: \[Errno 111\] Connection refused") as exc:
        alerts.post_message(f"http://127.0.0.1:{port}/services/{TOKEN}", {"text": "x"}, 5)
    assert "s3cr3t" not in str(exc.value)
    receiver.answers = [302]
    with pytest.raises(RedlineError, match="answered HTTP 302"):
        alerts.post_message(receiver.url, {"text": "x"}, 5)
    assert alerts.post_message(receiver.url, {"text": "x"}, 5) == 200


def test_the_command_prints_json_and_posts(spark, lake, alerts_cfg, receiver, monkeypatch,
                                           capsys):
    import argparse

    monkeypatch.setenv(ENV, receiver.url)
    monkeypatch.setattr(alerts_cli, "_session", lambda cfg: spark)
    parser = argparse.ArgumentParser(prog="redline")
    alerts_cli.add_alerts_parser(parser.add_subparsers(dest="command"))
    _write(spark, lake, [DRIFT, OLD])

    args = parser.parse_args(["alerts", "--since", "2024-04-01", "--json"])
    assert args.fn(alerts_cfg, args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert (summary["posted"], summary["skipped"], summary["since"]) == \
        (2, 0, "2024-04-01T00:00:00+00:00")
    assert [e["start_seq"] for e in summary["episodes"]] == [5, 30]
    assert [e["http_status"] for e in summary["episodes"]] == [200, 200]
    assert "2 new episode(s) in gold.spc_violations, 2 to post" in captured.err
    assert TOKEN not in captured.out + captured.err

    args = parser.parse_args(["alerts"])
    assert args.fn(alerts_cfg, args) == 0
    # Without --json the progress goes to stdout, the summary last.
    assert capsys.readouterr().out.splitlines() == [
        "0 new episode(s) in gold.spc_violations, 0 to post", "posted 0 new episode(s)"]
