"""Alerts without Spark or a network: rison and dashboard links, the message, episode
identity, --since, and where the webhook URL comes from. Expected strings are written by
hand."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from redline import catalog
from redline.config import load
from redline.dashboards import alerts, alerts_cli
from redline.dashboards.alerts import Episode
from redline.dashboards.links import dashboard_url, rison, spc_dashboard_url
from redline.errors import RedlineError

TOKEN = "xoxb-s3cr3t-t0ken-abcdef"
URL = f"https://hooks.slack.example/services/T0ABC/B0DEF/{TOKEN}"


def _cfg(tmp_path: Path, toml: str = "[local]\n", **env):
    path = tmp_path / "redline.toml"
    path.write_text(toml)
    return load("local", {"REDLINE_CONFIG": str(path), "REDLINE_HOME": str(tmp_path / "home"),
                          **env})


# -- rison and links ---------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("PLT-A", "PLT-A"),
    ("bolt_torque_nm", "bolt_torque_nm"),
    ("", "''"),
    ("a b", "'a b'"),
    ("it's", "'it!'s'"),
    ("wow!", "'wow!!'"),
    ("010", "'010'"),          # would read as a number
    ("-x", "'-x'"),            # '-' may not start an id
    ("x-1", "x-1"),
    ("a:b", "'a:b'"),
    ("(x)", "'(x)'"),
    ("a,b", "'a,b'"),
    ("Drehmoment_µ", "Drehmoment_µ"),
    (None, "!n"), (True, "!t"), (False, "!f"), (0, "0"), (-3, "-3"), (1.5, "1.5"),
    (2.0, "2"),
    ([], "!()"), (["a", 1], "!(a,1)"), ({}, "()"),
    ({"b": 1, "a": [True, "x y"]}, "(b:1,a:!(!t,'x y'))"),
])
def test_rison_encodes_like_the_reference(value, expected):
    assert rison(value) == expected


def test_rison_refuses_what_it_cannot_encode():
    with pytest.raises(TypeError, match="object keys must be strings"):
        rison({1: "a"})
    with pytest.raises(ValueError, match="no encoding for nan"):
        rison(float("nan"))


def test_one_filter_mask_is_supersets_native_filters_format():
    # The example of the issue, for the plant filter.
    url = dashboard_url("http://bi:8088", "spc", {"plant": "PLT-A"})
    mask = parse_qs(urlsplit(url).query)["native_filters"]
    assert mask == [
        "(NATIVE_FILTER-plant:(__cache:(label:PLT-A,validateStatus:!f,value:!(PLT-A)),"
        "extraFormData:(filters:!((col:plant,op:IN,val:!(PLT-A)))),"
        "filterState:(label:PLT-A,validateStatus:!f,value:!(PLT-A)),"
        "id:NATIVE_FILTER-plant,ownState:()))"]


def test_dashboard_url_percent_encodes_every_rison_character():
    url = dashboard_url("https://bi.example/", "spc", {"station": "A&B 1"})
    assert url == (
        "https://bi.example/superset/dashboard/spc/?native_filters="
        "%28NATIVE_FILTER-station%3A%28__cache%3A%28label%3A%27A%26B%201%27%2C"
        "validateStatus%3A%21f%2Cvalue%3A%21%28%27A%26B%201%27%29%29%2C"
        "extraFormData%3A%28filters%3A%21%28%28col%3Astation%2Cop%3AIN%2C"
        "val%3A%21%28%27A%26B%201%27%29%29%29%29%2C"
        "filterState%3A%28label%3A%27A%26B%201%27%2CvalidateStatus%3A%21f%2C"
        "value%3A%21%28%27A%26B%201%27%29%29%2C"
        "id%3ANATIVE_FILTER-station%2CownState%3A%28%29%29%29")
    assert unquote(url.split("=", 1)[1]) == (
        "(NATIVE_FILTER-station:(__cache:(label:'A&B 1',validateStatus:!f,"
        "value:!('A&B 1')),extraFormData:(filters:!((col:station,op:IN,val:!('A&B 1')))),"
        "filterState:(label:'A&B 1',validateStatus:!f,value:!('A&B 1')),"
        "id:NATIVE_FILTER-station,ownState:()))")
    assert dashboard_url("https://bi.example", "spc", {}) == \
        "https://bi.example/superset/dashboard/spc/"


def _filter(col: str, val: str) -> str:
    return (f"NATIVE_FILTER-{col}:(__cache:(label:{val},validateStatus:!f,value:!({val})),"
            f"extraFormData:(filters:!((col:{col},op:IN,val:!({val})))),"
            f"filterState:(label:{val},validateStatus:!f,value:!({val})),"
            f"id:NATIVE_FILTER-{col},ownState:())")


def test_spc_dashboard_url_sets_the_series_filter(tmp_path):
    cfg = _cfg(tmp_path, REDLINE_SUPERSET_PORT="18123")
    url = spc_dashboard_url(cfg, "PLT-A", "L1", "S010", "bolt_torque_nm")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == \
        "http://127.0.0.1:18123/superset/dashboard/spc/"
    assert parse_qs(parts.query) == {"native_filters": [
        "(" + _filter("series", "PLT-A/L1/S010/bolt_torque_nm") + ")"]}
    other = spc_dashboard_url(cfg, "P", "L", "S", "c", base_url="https://bi.example/")
    assert other.startswith("https://bi.example/superset/dashboard/spc/?native_filters=%28")


# -- the message -------------------------------------------------------------------------
T = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
DRIFT = Episode(plant="PLT-A", line="L1", station="S010", characteristic="bolt_torque_nm",
                chart="I", rule=2, start_seq=30,
                rule_name="9 points in a row on the same side of the centre line",
                end_seq=41, start_time=T, end_time=T + timedelta(minutes=11), points=12)
LINK = "https://bi.example/superset/dashboard/spc/?native_filters=%28x%29"


def test_message_reads_as_one_paragraph_with_the_link():
    assert alerts.message(DRIFT, LINK) == {"text": (
        "SPC out of control: bolt_torque_nm at PLT-A/L1/S010, individuals chart, Nelson "
        "rule 2 (9 points in a row on the same side of the centre line): 12 points "
        "(#30-#41), 2024-05-01 08:30:00 to 08:41:00 UTC. "
        "<https://bi.example/superset/dashboard/spc/?native_filters=%28x%29|"
        "Open the SPC dashboard>")}


def test_message_of_one_subgroup_across_midnight_in_each_link_format():
    ep = dataclasses.replace(
        DRIFT, chart="XBAR", rule=1, rule_name="1 point beyond 3 sigma", start_seq=7,
        end_seq=7, points=1, start_time=datetime(2024, 5, 1, 23, 58, tzinfo=UTC),
        end_time=datetime(2024, 5, 2, 0, 3, 30, tzinfo=UTC))
    body = ("SPC out of control: bolt_torque_nm at PLT-A/L1/S010, X-bar chart, Nelson rule 1 "
            "(1 point beyond 3 sigma): 1 subgroup (#7), 2024-05-01 23:58:00 to 2024-05-02 "
            "00:03:30 UTC.")
    assert alerts.message_text(ep, LINK, "markdown") == \
        f"{body} [Open the SPC dashboard]({LINK})"
    assert alerts.message_text(ep, LINK, "plain") == f"{body} SPC dashboard: {LINK}"
    single = dataclasses.replace(ep, end_time=ep.start_time)
    assert "1 subgroup (#7), 2024-05-01 23:58:00 UTC." in alerts.message_text(single, LINK)


def test_message_times_are_utc_whatever_the_offset_given():
    cet = timezone(timedelta(hours=2))
    ep = dataclasses.replace(DRIFT, start_time=datetime(2024, 5, 1, 10, 30, tzinfo=cet),
                             end_time=datetime(2024, 5, 1, 10, 41, tzinfo=cet))
    assert "2024-05-01 08:30:00 to 08:41:00 UTC." in alerts.message_text(ep, LINK)


def test_slack_reserved_characters_are_escaped():
    ep = dataclasses.replace(DRIFT, characteristic="<gap & flush>")
    text = alerts.message_text(ep, LINK)
    assert text.startswith("SPC out of control: &lt;gap &amp; flush&gt; at PLT-A/L1/S010,")
    assert alerts.message_text(ep, LINK, "markdown").startswith(
        "SPC out of control: <gap & flush> at")


# -- identity and --since ----------------------------------------------------------------
def test_episode_identity_is_the_series_chart_rule_and_first_point():
    assert alerts.IDENTITY == ("plant", "line", "station", "characteristic", "chart", "rule",
                               "start_seq")
    assert catalog.SPC_ALERTS.key == catalog.SPC_VIOLATIONS.key == alerts.IDENTITY
    assert DRIFT.identity == ("PLT-A", "L1", "S010", "bolt_torque_nm", "I", 2, 30)
    grown = dataclasses.replace(DRIFT, end_seq=45, points=16,
                                end_time=DRIFT.end_time + timedelta(minutes=4))
    assert grown.identity == DRIFT.identity
    for change in ({"start_seq": 50}, {"rule": 6}, {"chart": "XBAR"}, {"station": "S020"}):
        assert dataclasses.replace(DRIFT, **change).identity != DRIFT.identity


def test_since_parses_dates_times_spans_and_all():
    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    assert alerts.parse_since(None, now) is None
    assert alerts.parse_since("all", now) == "all"
    assert alerts.parse_since("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert alerts.parse_since("2024-05-01T06:00", now) == datetime(2024, 5, 1, 6, tzinfo=UTC)
    assert alerts.parse_since("2024-05-01T08:00+02:00", now) == \
        datetime(2024, 5, 1, 6, tzinfo=UTC)
    assert alerts.parse_since("24h", now) == datetime(2024, 5, 9, 12, tzinfo=UTC)
    assert alerts.parse_since("7d", now) == datetime(2024, 5, 3, 12, tzinfo=UTC)
    with pytest.raises(RedlineError, match=r"--since 'yesterday' is not an ISO date"):
        alerts.parse_since("yesterday", now)


def test_default_cutoff_applies_to_the_first_run_only():
    newest = datetime(2024, 5, 1, 9, 4, tzinfo=UTC)
    assert alerts.resolve_since(None, True, newest, 24.0) == \
        datetime(2024, 4, 30, 9, 4, tzinfo=UTC)
    assert alerts.resolve_since(None, False, newest, 24.0) is None
    assert alerts.resolve_since(None, True, None, 24.0) is None
    assert alerts.resolve_since("all", True, newest, 24.0) is None
    given = datetime(2024, 1, 1, tzinfo=UTC)
    assert alerts.resolve_since(given, True, newest, 24.0) == given
    assert alerts.resolve_since(given, False, newest, 24.0) == given


# -- the webhook URL: a secret -----------------------------------------------------------
def test_no_webhook_says_how_to_configure_one(tmp_path):
    cfg = _cfg(tmp_path)
    secret = tmp_path / "home" / "secrets" / "alerts_webhook_url"
    with pytest.raises(RedlineError, match=r"ALERTS_NO_WEBHOOK.*" + re.escape(str(secret))
                       + r".*alerts.webhook_url_env"):
        alerts.webhook_url(cfg, env={})
    assert not alerts.webhook_configured(cfg, env={})
    # post_new fails before it reads the lake (no Spark needed to find out).
    with pytest.raises(RedlineError, match="ALERTS_NO_WEBHOOK"):
        alerts.post_new(None, cfg, progress=lambda _: None, env={})


def test_webhook_from_a_secret_file_readable_by_its_owner_only(tmp_path):
    cfg = _cfg(tmp_path)
    secret = tmp_path / "home" / "secrets" / "alerts_webhook_url"
    secret.parent.mkdir(parents=True)
    secret.write_text(URL + "\n")
    os.chmod(secret, 0o644)
    with pytest.raises(RedlineError, match=r"readable by others \(mode 644\): `chmod 600 ") as exc:
        alerts.webhook_url(cfg, env={})
    assert TOKEN not in str(exc.value)
    os.chmod(secret, 0o600)
    assert alerts.webhook_url(cfg, env={}) == URL
    assert alerts.webhook_configured(cfg, env={})


def test_webhook_from_the_environment_variable_the_config_names(tmp_path):
    cfg = _cfg(tmp_path, '[local.alerts]\nwebhook_url_env = "QUALITY_SLACK_URL"\n')
    assert cfg.alerts.webhook_url_env == "QUALITY_SLACK_URL"
    with pytest.raises(RedlineError, match="QUALITY_SLACK_URL is not set or empty"):
        alerts.webhook_url(cfg, env={})
    assert not alerts.webhook_configured(cfg, env={})
    assert alerts.webhook_url(cfg, env={"QUALITY_SLACK_URL": URL}) == URL
    assert alerts.webhook_configured(cfg, env={"QUALITY_SLACK_URL": URL})
    with pytest.raises(RedlineError, match="not an http\\(s\\) URL") as exc:
        alerts.webhook_url(cfg, env={"QUALITY_SLACK_URL": TOKEN})
    assert TOKEN not in str(exc.value)


def test_alerts_settings_are_validated_at_load_time(tmp_path):
    cfg = _cfg(tmp_path, "[local]\n")
    assert (cfg.alerts.timeout_seconds, cfg.alerts.first_run_hours, cfg.alerts.link_format,
            cfg.alerts.dashboard_url) == (10.0, 24.0, "slack", "")
    with pytest.raises(RedlineError, match="alerts.link_format must be slack, markdown or "
                                           "plain, got 'html'"):
        _cfg(tmp_path, '[local.alerts]\nlink_format = "html"\n')
    with pytest.raises(RedlineError, match="alerts.timeout_seconds must be above 0"):
        _cfg(tmp_path, "[local]\n", REDLINE_ALERTS_TIMEOUT_SECONDS="0")
    with pytest.raises(RedlineError, match="must be the NAME of an environment variable") as exc:
        _cfg(tmp_path, f'[local.alerts]\nwebhook_url_env = "{URL}"\n')
    assert TOKEN not in str(exc.value)
    with pytest.raises(RedlineError, match=r"unknown key\(s\) \['webhook_url'\]"):
        _cfg(tmp_path, f'[local.alerts]\nwebhook_url = "{URL}"\n')


def test_redact_keeps_scheme_and_host_only():
    assert alerts.redact(URL) == "https://hooks.slack.example"
    assert alerts.redact("http://user:pw@127.0.0.1:8123/hook?key=abc") == "http://127.0.0.1:8123"


# -- the command -------------------------------------------------------------------------
def _args(*argv):
    parser = argparse.ArgumentParser(prog="redline")
    sub = parser.add_subparsers(dest="command", required=True)
    alerts_cli.add_alerts_parser(sub)
    return parser.parse_args(["alerts", *argv])


def test_command_options_and_failing_before_spark_starts(tmp_path, monkeypatch):
    args = _args("--since", "7d", "--dry-run", "--json")
    assert (args.since, args.dry_run, args.json, args.fn) == ("7d", True, True,
                                                              alerts_cli.cmd_alerts)
    assert (_args().since, _args().dry_run, _args().json) == (None, False, False)

    def no_spark(cfg):
        raise AssertionError("Spark must not start")

    monkeypatch.setattr(alerts_cli, "_session", no_spark)
    cfg = _cfg(tmp_path)
    with pytest.raises(RedlineError, match="ALERTS_NO_WEBHOOK"):
        alerts_cli.cmd_alerts(cfg, _args())
    with pytest.raises(RedlineError, match="ALERTS_SINCE"):
        alerts_cli.cmd_alerts(cfg, _args("--dry-run", "--since", "last week"))


def test_summary_for_people():
    episode = {"summary": "SPC out of control: bolt_torque_nm at PLT-A/L1/S010, ...",
               "text": "long", "link": LINK}
    dry = {"dry_run": True, "since": "2024-04-30T09:04:00+00:00", "new": 3, "posted": 0,
           "skipped": 1, "episodes": [episode]}
    assert alerts.render(dry) == (
        "- SPC out of control: bolt_torque_nm at PLT-A/L1/S010, ...\n"
        "dry run: 1 episode(s) would be posted; 1 ending before 2024-04-30T09:04:00+00:00 "
        "would be skipped")
    done = {**dry, "dry_run": False, "posted": 1}
    assert alerts.render(done) == ("posted 1 new episode(s); 1 ending before "
                                   "2024-04-30T09:04:00+00:00 recorded as skipped")
