"""Every job run is recorded in ops.job_runs with input/output Delta versions."""

from datetime import datetime

import pytest

from redline import catalog
from redline import lake as lake_io
from redline.jobs import runner


def _silver_results(spark):
    row = {"event_id": "e1", "event_time": datetime(2026, 1, 5, 8), "schema_version": 1,
           "unit_serial": "U1", "plant": "P", "line": "L", "station": "S010",
           "operation": "op", "shift": "A", "attempt": 1, "result": "PASS",
           "measurements": [], "defect_codes": [], "cycle_time_s": 1.0,
           "kafka_topic": "t", "kafka_partition": 0, "kafka_offset": 0}
    return spark.createDataFrame([row], catalog.silver("station_results").schema())


def test_runs_are_appended_with_versions_and_failures(spark, lake):
    silver = catalog.silver("station_results")
    lake_io.overwrite(_silver_results(spark), lake, silver)
    lake_io.overwrite(_silver_results(spark), lake, silver)  # silver at version 1

    job = runner.get("gold_first_pass_yield")
    runner.run(spark, lake, job, "batch-1")

    def boom(inputs):
        raise ValueError("no luck")

    with pytest.raises(ValueError, match="no luck"):
        runner.run(spark, lake, runner.with_transform(job, boom), "batch-2", full=True)

    runs = catalog.read(spark, lake, catalog.get("ops.job_runs")).orderBy("started_at").collect()
    assert [(r.batch_id, r.status) for r in runs] == [
        ("batch-1", "SUCCEEDED"), ("batch-2", "FAILED")]
    first, failed = runs
    assert [(i.table, i.version) for i in first.inputs] == [("silver.station_results", 1)]
    assert [(o.table, o.version, o.rows) for o in first.outputs] == \
        [("gold.first_pass_yield", 0, 1)]
    # The failed run wrote nothing: its output is still at the version of the first run.
    assert [(o.table, o.version) for o in failed.outputs] == [("gold.first_pass_yield", 0)]
    metrics = dict(first.metrics)
    phases = metrics.pop("seconds_by_phase")
    assert metrics == {"rows": "1", "mode": "full", "reason": "first run (no watermark)"}
    assert [p.split("=")[0] for p in phases.split()] == ["plan", "changes", "rebuild", "record"]
    assert first.error is None
    assert first.ended_at >= first.started_at and first.seconds >= 0
    assert failed.error == "ValueError: no luck" and failed.metrics == {}
    assert first.run_id != failed.run_id


def test_unknown_tables_have_null_versions(spark, lake):
    from redline.catalog import Layer, Table
    from redline.runs import delta_state

    assert delta_state(spark, lake, catalog.FIRST_PASS_YIELD) == (None, None)
    unknown = Table(Layer.SILVER, "no_such_table", lambda: None, "not in the catalog")
    assert delta_state(spark, lake, unknown) == (None, None)


def test_silver_jobs_run_with_the_configured_ingest_settings(spark, lake):
    """`redline jobs run silver_<topic>` applies the configuration's ingest settings,
    here a record size limit small enough to quarantine one of two records."""
    import json

    from redline.config import IngestConfig
    from redline.pipeline import run_jobs
    from redline.schemas.tables import BRONZE

    ts = datetime(2026, 2, 1, 10)
    events = [{"event_id": f"e{n}", "event_time": "2026-02-01T10:00:00Z", "schema_version": 1,
               "vin": "RDLTEST0000000001", "odometer_km": 1.0, "padding": "x" * pad}
              for n, pad in ((0, 0), (1, 400))]
    bronze = spark.createDataFrame(
        [(b"k", json.dumps(e).encode(), "t", 0, i, ts, ts) for i, e in enumerate(events)],
        BRONZE)
    lake_io.append(bronze, lake, catalog.bronze("vehicle_telemetry"))
    out = run_jobs(spark, lake, ["silver_vehicle_telemetry"], progress=lambda _: None,
                   record=False, ingest=IngestConfig(max_record_bytes=300))
    result = out["silver_vehicle_telemetry"]
    assert (result["silver"], result["quarantined"]) == (1, 1)
    reasons = [r.reason_code for r in catalog.read(spark, lake, catalog.get("silver.quarantine"))
               .collect()]
    assert reasons == ["RECORD_TOO_LARGE"]
