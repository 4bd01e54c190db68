"""The SPC and MTBF jobs run from silver tables in a lake, write their gold tables and
record every output in ops.job_runs."""

from simulated import typed

from redline import catalog
from redline import lake as lake_io
from redline.jobs.runner import JOBS
from redline.jobs.runner import run as run_job
from redline.streaming.simulator import SimulationSpec, Simulator

SPEC = SimulationSpec(vehicles=60, days=20, seed=11)
TOPICS = ("station_results", "vehicle_builds", "warranty_claims")


def _write_silver(spark, root):
    rows = {t: [] for t in TOPICS}
    for n, event in enumerate(Simulator(SPEC).events()):
        if event.topic in rows:
            p = typed(event.payload)
            p.update(kafka_topic=f"redline.{event.topic}", kafka_partition=0, kafka_offset=n)
            rows[event.topic].append(p)
    for topic, payloads in rows.items():
        table = catalog.silver(topic)
        fields = table.schema().fields
        df = spark.createDataFrame([tuple(p.get(f.name) for f in fields) for p in payloads],
                                   table.schema())
        lake_io.overwrite(df, root, table)


def test_spc_and_mtbf_jobs_write_and_record_their_tables(spark, lake):
    _write_silver(spark, lake)
    spc_out = run_job(spark, lake, JOBS["gold_spc"], "b1")
    mtbf_out = run_job(spark, lake, JOBS["gold_mtbf"], "b1")

    def rows(name):
        return catalog.read(spark, lake, catalog.get(name))

    assert spc_out["spc_subgroups"] == rows("gold.spc_subgroups").count() > 0
    charts = {r.chart for r in rows("gold.spc_violations").select("chart").distinct().collect()}
    assert charts <= {"I", "XBAR"} and "I" in charts
    assert mtbf_out["rows"] == rows("gold.mtbf").count() == 4  # one row per component
    runs = {r.job: r for r in rows("ops.job_runs").collect()}
    assert [o.table for o in runs["gold_spc"].outputs] == [
        "gold.spc_points", "gold.spc_subgroups", "gold.spc_violations"]
    assert [(o.table, o.version) for o in runs["gold_mtbf"].outputs] == [("gold.mtbf", 0)]
    assert {r.status for r in runs.values()} == {"SUCCEEDED"}
