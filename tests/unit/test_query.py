"""Read commands without a Thrift Server: the fallback decision, and the SQL they run.

Nothing listens on the Thrift port these tests configure (a free port, a fresh state
folder), so every read goes through the local Spark session. The same commands through a
running server are tested in tests/integration/test_dashboards.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import asdict

import pytest

from redline import catalog, lake
from redline.cli import build_parser, main
from redline.config import load
from redline.query import SparkReader, open_reader, render, thrift_unavailable
from redline.services.base import process_identity
from redline.streaming import quarantine, status

FPY_ROWS = [  # day, plant, line, station, units, first_pass_units, fpy
    (dt.date(2024, 5, 1), "P1", "L1", "S1-weld", 100, 95, 0.95),
    (dt.date(2024, 5, 1), "P1", "L1", "S2-paint", 100, 80, 0.80),
    (dt.date(2024, 5, 2), "P1", "L1", "S1-weld", 200, 180, 0.90),
]
BY_STATION = ("SELECT station, sum(units) AS units, sum(first_pass_units) AS fp "
              "FROM gold.first_pass_yield GROUP BY station ORDER BY station")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_server(spark, lake, tmp_path, monkeypatch):
    """A configuration whose Thrift port is free and whose state folder has no pid file."""
    port = _free_port()
    monkeypatch.setenv("REDLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REDLINE_THRIFT_PORT", str(port))
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    cfg = load()
    assert cfg.thrift.port == port
    return cfg


def test_the_verbose_flag_goes_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["sql", "SELECT 1"]).verbose is False
    assert parser.parse_args(["--verbose", "sql", "SELECT 1"]).verbose is True
    assert parser.parse_args(["sql", "SELECT 1", "--verbose"]).verbose is True
    assert parser.parse_args(["--verbose", "jobs", "list"]).verbose is True
    assert parser.parse_args(["quarantine", "list", "--verbose"]).verbose is True


def test_no_server_running_means_a_local_spark_session(no_server, spark, capsys):
    cfg = no_server
    address = f"127.0.0.1:{cfg.thrift.port}"
    assert thrift_unavailable(cfg) == f"not running ({address})"
    lake.overwrite(spark.createDataFrame(FPY_ROWS, catalog.FIRST_PASS_YIELD.schema()),
                   cfg.lake_root, catalog.FIRST_PASS_YIELD)

    capsys.readouterr()
    assert main(["--verbose", "sql", BY_STATION, "--json"]) == 0
    out, err = capsys.readouterr()
    assert (f"redline: Thrift Server not running ({address}); starting a local Spark "
            f"session (local.conf)") in err
    assert json.loads(out) == [{"station": "S1-weld", "units": 300, "fp": 275},
                               {"station": "S2-paint", "units": 100, "fp": 80}]

    # Without --verbose: only the line the local path always printed.
    assert main(["sql", BY_STATION, "--limit", "1"]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == "starting Spark (local.conf) ..."
    assert out.splitlines() == ["+-------+-----+---+", "|station|units|fp |",
                                "+-------+-----+---+", "|S1-weld|300  |275|",
                                "+-------+-----+---+", "only showing top 1 row"]


def test_a_pid_whose_port_does_not_answer_means_a_local_spark_session(no_server):
    cfg = no_server
    pid_file = cfg.home / "services" / "spark-thrift" / "spark-thrift.pid"
    pid_file.parent.mkdir(parents=True)
    # A live process, recorded as a service records it, but nothing on the port.
    pid_file.write_text(json.dumps({**process_identity(os.getpid()), "final": True}))
    assert thrift_unavailable(cfg) == f"not answering on 127.0.0.1:{cfg.thrift.port}"
    said = []
    with open_reader(cfg, "test", verbose=True, say=said.append) as reader:
        assert reader.via == "spark"
        assert reader.query("SELECT 1 AS one").rows == [{"one": 1}]
    assert said == [f"redline: Thrift Server not answering on 127.0.0.1:{cfg.thrift.port}; "
                    "starting a local Spark session (local.conf)"]


@pytest.mark.parametrize("query, message", [
    ("SELEC 1", "[SQL_ERROR] [PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'"),
    ("SELECT * FROM gold.no_such_table",
     "[SQL_ERROR] [TABLE_OR_VIEW_NOT_FOUND] The table or view `gold`.`no_such_table` "
     "cannot be found."),
])
def test_sql_errors_are_one_line(no_server, capsys, query, message):
    capsys.readouterr()
    assert main(["sql", query]) == 2
    err = [line for line in capsys.readouterr().err.splitlines()
           if not line.startswith("starting Spark")]
    assert len(err) == 1 and err[0].startswith(f"redline: error {message}"), err


def test_render_lays_rows_out_like_spark_show():
    from redline.query import Result

    result = Result(["a", "long_name", "n"], [
        {"a": "x", "long_name": None, "n": [1, 2]},
        {"a": "yyyy", "long_name": True, "n": {"k": 1}}])
    assert render(result).splitlines() == [
        "+----+---------+--------+",
        "|a   |long_name|n       |",
        "+----+---------+--------+",
        "|x   |NULL     |[1, 2]  |",
        "|yyyy|true     |{\"k\": 1}|",
        "+----+---------+--------+"]


# --- ingest status and quarantine list: the statements they run -------------------------
T0 = dt.datetime(2026, 3, 1, 12, 0, 0)
TOPIC, OTHER = "station_results", "vehicle_dtc"


def _batch(topic, batch_id, start_s, end_s, rows_in, silver, quarantined, dups, rules):
    return (topic, "q", batch_id, T0 + dt.timedelta(seconds=start_s),
            T0 + dt.timedelta(seconds=end_s), rows_in, silver, quarantined, dups, None, None,
            [(rule, "warn", n) for rule, n in rules])


BATCHES = [
    # topic, id, started, ended (s after T0), in, silver, quarantined, duplicates, rules
    _batch(TOPIC, 0, 0, 10, 100, 90, 5, 5, [("speed", 2)]),
    # The rate window is the 300 s before the last batch's end (1000 s): batches 1 and 2.
    _batch(TOPIC, 1, 700, 710, 40, 40, 0, 0, [("speed", 1), ("soc", 0)]),
    _batch(TOPIC, 2, 990, 1000, 60, 50, 10, 0, [("soc", 4)]),
    _batch(OTHER, 0, 0, 5, 7, 7, 0, 0, []),
]
QUARANTINED = [
    # source_table, partition, offset, reason code, seconds after T0
    ("bronze.station_results", 0, 11, "MALFORMED_JSON", 30),
    ("bronze.station_results", 1, 12, "TYPE_MISMATCH", 20),
    ("bronze.station_results", 0, 13, "MALFORMED_JSON", 30),
    ("bronze.vehicle_dtc", 0, 3, "RULE_FAILED", 40),
]


@pytest.fixture
def ops_tables(no_server, spark):
    cfg = no_server
    lake.overwrite(spark.createDataFrame(BATCHES, catalog.SILVER_BATCHES.schema()),
                   cfg.lake_root, catalog.SILVER_BATCHES)
    rows = [(src, f"redline.{src.split('.')[1]}", p, o, "{", code, f"{code} at {o}",
             T0 + dt.timedelta(seconds=s)) for src, p, o, code, s in QUARANTINED]
    lake.overwrite(spark.createDataFrame(rows, catalog.QUARANTINE.schema()),
                   cfg.lake_root, catalog.QUARANTINE)
    bronze = catalog.bronze(TOPIC)
    for offset in range(3):  # three commits: versions 0, 1, 2
        lake.append(spark.createDataFrame(
            [(b"k", b"{}", f"redline.{TOPIC}", 0, offset, T0, T0)], bronze.schema()),
            cfg.lake_root, bronze)
    return cfg


def test_lake_part_of_ingest_status_by_hand(ops_tables, spark):
    cfg = ops_tables
    out = {t: status.TopicStatus(t) for t in (TOPIC, OTHER, "vehicle_builds")}
    status.lake_status_sql(SparkReader(cfg, spark), cfg.lake_root, out)
    st = out[TOPIC]
    # No silver checkpoint: every bronze commit (versions 0..2) is still to do.
    assert st.bronze_versions_behind == 3
    assert (st.silver_batches, st.rows_in, st.rows_silver, st.rows_quarantined,
            st.rows_duplicate) == (3, 200, 180, 15, 5)
    assert st.silver_last_batch == 2 and st.silver_last_batch_at == "2026-03-01T12:16:40"
    assert st.silver_rows_per_s == round((40 + 60) / 300, 1)  # 700 s .. 1000 s
    assert st.rule_violations == {"speed": 3, "soc": 4}
    assert st.quarantine == {"MALFORMED_JSON": 2, "TYPE_MISMATCH": 1}
    other = out[OTHER]
    assert other.bronze_versions_behind is None  # no bronze table
    assert (other.silver_batches, other.rows_in, other.silver_rows_per_s) == (1, 7, 1.4)
    assert other.rule_violations == {} and other.quarantine == {"RULE_FAILED": 1}
    assert asdict(out["vehicle_builds"]) == asdict(status.TopicStatus("vehicle_builds"))


def test_quarantine_list_newest_first(ops_tables, spark, capsys):
    cfg = ops_tables
    reader = SparkReader(cfg, spark)
    rows = quarantine.list_rows_sql(reader, TOPIC, limit=10)
    # Newest first; equal times by partition, then offset.
    assert [(r["kafka_partition"], r["kafka_offset"]) for r in rows] == [(0, 11), (0, 13),
                                                                         (1, 12)]
    assert rows == quarantine.list_rows(spark, cfg.lake_root, TOPIC, 10)
    assert len(quarantine.list_rows_sql(reader, None, limit=2)) == 2
    capsys.readouterr()
    assert main(["quarantine", "list", "--json", "--table", f"bronze.{OTHER}"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["reason_code"] == "RULE_FAILED" and row["quarantined_at"] == "2026-03-01 12:00:40"
