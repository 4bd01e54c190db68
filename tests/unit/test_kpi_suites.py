"""The quality suites of the KPI, attribution and dimension tables pass on simulator data
(so the gate in `redline demo` stays green) and fail on a broken KPI row."""

from pyspark.sql import functions as F
from simulated import silver_frames

from redline import catalog
from redline import lake as lake_io
from redline.jobs.attribution import default_periods, kpi_attribution
from redline.jobs.dimensions import dim_vehicle, firmware_periods
from redline.jobs.manufacturing_kpis import line_kpis, station_kpis
from redline.quality.gate import run_gate
from redline.streaming.simulator import SimulationSpec

TABLES = ["gold.station_kpis", "gold.line_kpis", "gold.kpi_attribution", "gold.dim_vehicle",
          "gold.dim_vehicle_firmware"]


def _silver(spark, spec):
    return silver_frames(spark, spec, ("station_results", "vehicle_builds", "vehicle_dtc"))


def test_suites_pass_on_simulator_data_and_catch_a_bad_rate(spark, lake, tmp_path):
    s = _silver(spark, SimulationSpec(vehicles=30, days=16, seed=3))
    results, builds = s["station_results"], s["vehicle_builds"]
    last = max(r.event_time for r in results.select("event_time").collect()).date()
    baseline, current = default_periods(last)
    for name, df in (("station_kpis", station_kpis(results)),
                     ("line_kpis", line_kpis(results)),
                     ("kpi_attribution", kpi_attribution(results, builds, baseline, current)),
                     ("dim_vehicle", dim_vehicle(builds)),
                     ("dim_vehicle_firmware", firmware_periods(builds, s["vehicle_dtc"]))):
        lake_io.overwrite(df, lake, catalog.get(f"gold.{name}"))
    gate = run_gate(spark, lake, tmp_path / "reports", tables=TABLES, progress=lambda _: None)
    assert gate.success, gate.summary()

    table = catalog.get("gold.line_kpis")
    broken = catalog.read(spark, lake, table).limit(1).withColumn("rty", F.lit(1.5))
    lake_io.append(broken, lake, table)
    bad = run_gate(spark, lake, tmp_path / "reports", tables=["gold.line_kpis"],
                   progress=lambda _: None)
    assert not bad.success
    # RTY 1.5 is out of range, and the appended copy duplicates its key.
    assert {f.expectation for f in bad.failures} == {
        "expect_column_values_to_be_between", "expect_compound_columns_to_be_unique"}
    assert [f.column for f in bad.failures
            if f.expectation == "expect_column_values_to_be_between"] == ["rty"]
