"""lake.replace_where: a key's tail replaced in one commit, other rows kept, keys quoted."""

import pytest
from pyspark.sql.types import LongType, StringType, StructField, StructType

from redline import catalog
from redline import lake as lake_io

ODD = "it's a \\ key"


def test_sql_literals_round_trip_through_spark(spark):
    values = [ODD, "plain", 3, 2.5, True, None]
    row = spark.sql("SELECT " + ", ".join(f"{lake_io.sql_literal(v)} AS c{i}"
                                           for i, v in enumerate(values))).first()
    assert list(row) == values
    with pytest.raises(TypeError):
        lake_io.sql_literal(object())


def test_a_keys_tail_is_replaced_and_the_rest_kept(spark, lake, monkeypatch):
    schema = StructType([StructField("k", StringType()), StructField("seq", LongType())])
    table = catalog.Table(catalog.Layer.GOLD, "replace_where_test", lambda: schema, "a test")
    rows = [(k, s) for k in (ODD, "other") for s in range(1, 6)]
    lake_io.overwrite(spark.createDataFrame(rows, schema), lake, table)
    predicate = f"k <=> {lake_io.sql_literal(ODD)} AND seq > 2"

    lake_io.replace_where(spark.createDataFrame([(ODD, 3), (ODD, 4)], schema), lake, table,
                          predicate)

    got = sorted(tuple(r) for r in catalog.read(spark, lake, table).collect())
    assert got == sorted([(ODD, 1), (ODD, 2), (ODD, 3), (ODD, 4),
                          *[("other", s) for s in range(1, 6)]])
    # A row outside the predicate is refused, and the table is left as it was.
    with pytest.raises(Exception, match="(?i)replaceWhere|constraint|DELTA_REPLACE_WHERE"):
        lake_io.replace_where(spark.createDataFrame([("other", 9)], schema), lake, table,
                              predicate)
    assert catalog.read(spark, lake, table).count() == 9
