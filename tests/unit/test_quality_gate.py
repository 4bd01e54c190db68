from datetime import date

from redline import catalog, lake
from redline.quality.gate import run_gate
from redline.schemas.tables import FIRST_PASS_YIELD

D = date(2026, 1, 5)


def _gate(spark, lake_root, tmp_path, rows):
    if rows is not None:
        df = spark.createDataFrame(rows, FIRST_PASS_YIELD)
        lake.overwrite(df, lake_root, catalog.get("gold.first_pass_yield"))
    return run_gate(spark, lake_root, tmp_path / "reports", tables=["gold.first_pass_yield"],
                    progress=lambda _: None)


def test_gate_passes_good_table_and_fails_bad_one(spark, lake, tmp_path):
    good = _gate(spark, lake, tmp_path, [(D, "PLT-A", "L1", "S010", 10, 9, 0.9),
                                         (D, "PLT-A", "L1", "S020", 4, 4, 1.0)])
    assert good.success, good.summary()
    assert good.report_json.exists()

    bad = _gate(spark, lake, tmp_path, [(D, "PLT-A", "L1", "S010", 10, 11, 1.1),
                                        (D, "PLT-A", "L1", "S020", 4, 4, 1.0)])
    assert not bad.success
    failed = {(f.expectation, f.column) for f in bad.failures}
    assert failed == {("expect_column_values_to_be_between", "fpy"),
                      ("expect_column_pair_values_a_to_be_greater_than_b",
                       "units,first_pass_units")}
    assert "1.1" in bad.report_md.read_text()


def test_gate_fails_on_empty_and_on_missing_table(spark, lake, tmp_path):
    missing = _gate(spark, lake, tmp_path, None)
    assert not missing.success
    assert missing.failures[0].detail == "table has never been written"
    empty = _gate(spark, lake, tmp_path, [])
    assert not empty.success
    assert [f.expectation for f in empty.failures] == ["expect_table_row_count_to_be_between"]
