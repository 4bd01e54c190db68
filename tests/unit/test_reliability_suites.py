"""The suites of the X-bar/R, violation, MTBF and Weibull tables pass on simulator data
and catch a broken row."""

from datetime import timedelta

from pyspark.sql import functions as F
from simulated import silver_frames

from redline import catalog
from redline import lake as lake_io
from redline.jobs.mtbf import mtbf
from redline.jobs.reliability import weibull_tables
from redline.jobs.spc import (
    control_limits,
    measurements,
    nelson_violations,
    xbar_r,
    xbar_violations,
)
from redline.quality.gate import run_gate
from redline.streaming.simulator import SimulationSpec

TABLES = ["gold.spc_subgroups", "gold.spc_violations", "gold.mtbf", "gold.weibull_fits",
          "gold.weibull_plot"]
SPEC = SimulationSpec(vehicles=120, days=40, seed=5)


def _silver(spark):
    return silver_frames(spark, SPEC, ("station_results", "vehicle_builds", "warranty_claims"))


def test_suites_pass_on_simulator_data_and_catch_bad_rows(spark, lake, tmp_path):
    s = _silver(spark)
    points = measurements(s["station_results"])
    subgroups = xbar_r(points)
    end = SPEC.start + timedelta(days=SPEC.days - 1)
    fits, plot = weibull_tables(s["vehicle_builds"], s["warranty_claims"], end)
    for name, df in (
            ("spc_subgroups", subgroups),
            ("spc_violations", nelson_violations(control_limits(points))
             .unionByName(xbar_violations(subgroups))),
            ("mtbf", mtbf(s["vehicle_builds"], s["warranty_claims"], end)),
            ("weibull_fits", fits), ("weibull_plot", plot)):
        lake_io.overwrite(df, lake, catalog.get(f"gold.{name}"))
    gate = run_gate(spark, lake, tmp_path / "reports", tables=TABLES, progress=lambda _: None)
    assert gate.success, gate.summary()

    table = catalog.get("gold.mtbf")
    broken = (catalog.read(spark, lake, table).where(F.col("failures") > 0).limit(1)
              .withColumn("mtbf_ci_low_days", F.col("mtbf_days") * 2))
    lake_io.append(broken, lake, table)
    fits_table = catalog.get("gold.weibull_fits")
    lake_io.append(catalog.read(spark, lake, fits_table).where(F.col("status") == "OK")
                   .limit(1).withColumn("level", F.lit("broken"))
                   .withColumn("b10_ci_high_days", F.col("b10_days") / 2),
                   lake, fits_table)
    bad = run_gate(spark, lake, tmp_path / "reports", tables=["gold.mtbf", "gold.weibull_fits"],
                   progress=lambda _: None)
    assert not bad.success
    # A lower bound above the estimate, and the appended copy repeats its component.
    assert {(f.expectation, f.column) for f in bad.failures} >= {
        ("expect_column_values_to_be_unique", "component")}
    assert "expect_column_pair_values_a_to_be_greater_than_b" in {
        f.expectation for f in bad.failures if f.table == "gold.mtbf"}
    # A B10 upper bound below the estimate.
    assert ("expect_column_pair_values_a_to_be_greater_than_b", "b10_ci_high_days,b10_days") in {
        (f.expectation, f.column) for f in bad.failures if f.table == "gold.weibull_fits"}
