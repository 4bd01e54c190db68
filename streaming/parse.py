"""Bronze rows -> typed silver rows or quarantine rows: the silver stream's pure transforms.

``parse`` is pure: it splits bronze rows into typed good rows and quarantine rows with a
reason code. Nothing is dropped silently: a record is either in silver, in quarantine, or
a duplicate of an ``event_id`` already in silver (counts reconcile).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from redline.config import IngestConfig
from redline.quality import row_rules
from redline.quality.row_rules import Rule
from redline.schemas.payloads import PAYLOADS, Payload, latest

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# Reason codes are part of the contract with `redline quarantine list` and dashboards.
MALFORMED_JSON = "MALFORMED_JSON"
UNKNOWN_SCHEMA_VERSION = "UNKNOWN_SCHEMA_VERSION"
MISSING_REQUIRED = "MISSING_REQUIRED"
TYPE_MISMATCH = "TYPE_MISMATCH"
RECORD_TOO_LARGE = "RECORD_TOO_LARGE"

#: Records above this size (``ingest.max_record_bytes``) are quarantined unparsed (the
#: broker accepts larger ones so that they reach the lake with their coordinates instead
#: of failing the producer).
MAX_RECORD_BYTES = IngestConfig.max_record_bytes
_KEPT_BYTES = 4096
_CORRUPT = "_corrupt_record"


def annotate(bronze: DataFrame, payload: Payload,
             max_record_bytes: int = MAX_RECORD_BYTES) -> DataFrame:
    """Bronze rows parsed once: coordinates, ``_raw`` text, ``_p`` payload, ``_code``/``_reason``.

    ``payload`` is the latest version; every known version of the topic is accepted
    (schemas.payloads.check_evolution guarantees older versions are subsets of it, so an
    older record lands with the newer optional fields null). A field present in the JSON
    whose value does not fit its declared type is a TYPE_MISMATCH (Spark would otherwise
    turn it into null); a required field that is absent or null is MISSING_REQUIRED; a
    value over ``max_record_bytes`` is RECORD_TOO_LARGE and is not parsed at all (``_raw``
    keeps its first bytes). ``_code`` is null for a good record.

    Persist the result when it is used more than once: Spark pushes filters on ``_code``
    below this projection and would evaluate ``from_json`` once per check in it.
    """
    from functools import reduce

    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, StringType, StructField, StructType

    struct = payload.struct
    too_large = F.coalesce(F.length("value"), F.lit(0)) > max_record_bytes
    # An oversized value is never parsed; quarantine keeps its first bytes, bronze all.
    text = F.when(too_large, F.lit(None)).otherwise(F.col("value")).cast("string")
    known_versions = sorted(PAYLOADS[payload.name])
    # One parse per record. Spark's permissive parser fills ``_corrupt`` when the text is
    # not JSON or a value does not fit its field (the field is then null), so a clean
    # record is recognised from this parse alone.
    with_corrupt = StructType([*struct.fields, StructField(_CORRUPT, StringType())])
    df = bronze.select(
        "topic", "partition", "offset", "kafka_timestamp",
        F.when(too_large, F.substring("value", 1, _KEPT_BYTES).cast("string"))
         .otherwise(text).alias("_raw"),
        F.length("value").alias("_bytes"), too_large.alias("_too_large"),
        F.from_json(text, with_corrupt,
                    {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}).alias("_p"))
    suspect = reduce(lambda a, b: a | b, [
        F.col("_too_large"), F.col("_p").isNull(), F.col(f"_p.{_CORRUPT}").isNotNull(),
        ~F.coalesce(F.col("_p.schema_version").isin(known_versions), F.lit(False)),
        *[F.col(f"_p.{f.name}").isNull() for f in struct.fields if not f.nullable]])

    # Only a suspect record is parsed a second time, as a map of raw texts, to name what is
    # wrong with it (CASE evaluates a branch only for rows that reach it).
    m = F.from_json(F.col("_raw"), MapType(StringType(), StringType()))
    checks: list[tuple[str, Column, Column]] = [
        (RECORD_TOO_LARGE, F.col("_too_large"),
         F.format_string(f"value is %,d bytes, over the {max_record_bytes:,}-byte limit "
                          f"(raw_value keeps the first {_KEPT_BYTES:,} bytes; bronze has "
                          f"the whole record)", F.col("_bytes"))),
        (MALFORMED_JSON, m.isNull(), F.lit("value is not a JSON object")),
        (UNKNOWN_SCHEMA_VERSION,
         ~F.col("_p.schema_version").isin(known_versions),
         F.concat(F.lit("schema_version "), F.coalesce(m["schema_version"], F.lit("null")),
                  F.lit(f" is not one of {known_versions}"))),
    ]
    for f in struct.fields:
        raw = m[f.name]
        parsed = F.col(f"_p.{f.name}")
        checks.append((TYPE_MISMATCH, raw.isNotNull() & parsed.isNull(),
                       F.concat(F.lit(f"{f.name}: value "), F.substring(raw, 1, 80),
                                F.lit(f" is not a valid {f.dataType.simpleString()}"))))
        if not f.nullable:
            checks.append((MISSING_REQUIRED, raw.isNull(),
                           F.lit(f"required field {f.name} is missing or null")))
    for f in struct.fields:
        if isinstance(f.dataType, (ArrayType, MapType, StructType)):
            # A value deep inside (a measurement's value given as text) leaves the field
            # itself non-null; parsing the field alone tells whether it fits.
            alone = F.from_json(
                F.concat(F.lit('{"v":'), m[f.name], F.lit("}")),
                StructType([StructField("v", f.dataType), StructField(_CORRUPT, StringType())]),
                {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT})
            checks.append((TYPE_MISMATCH, m[f.name].isNotNull() & alone[_CORRUPT].isNotNull(),
                           F.concat(F.lit(f"{f.name}: value "), F.substring(m[f.name], 1, 80),
                                    F.lit(f" is not a valid {f.dataType.simpleString()}"))))
    # Whatever else the parser refused is still refused, never landed with a null in it.
    checks.append((TYPE_MISMATCH, F.col(f"_p.{_CORRUPT}").isNotNull(),
                   F.lit("a value does not fit the schema")))

    code = F.lit(None).cast("string")
    reason = F.lit(None).cast("string")
    for c, cond, msg in reversed(checks):  # first failing check wins
        code = F.when(cond, F.lit(c)).otherwise(code)
        reason = F.when(cond, msg).otherwise(reason)
    df = df.withColumn("_suspect", suspect)
    code = F.when(F.col("_suspect"), code)
    reason = F.when(F.col("_suspect"), reason)
    return df.select("topic", "partition", "offset", "kafka_timestamp", "_raw", "_p",
                     code.alias("_code"), reason.alias("_reason"))


def split(annotated: DataFrame, payload: Payload, source_table: str,
          keep_raw: bool = False) -> tuple[DataFrame, DataFrame]:
    """(good, quarantined) rows of an ``annotate`` result.

    ``keep_raw`` adds the record's text to good rows as ``_raw`` (for rule quarantine).
    """
    from pyspark.sql import functions as F

    good = annotated.where(F.col("_code").isNull()).select(
        *[F.col(f"_p.{f.name}").alias(f.name) for f in payload.struct.fields],
        F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"), "kafka_timestamp",
        *([F.col("_raw")] if keep_raw else []))
    bad = annotated.where(F.col("_code").isNotNull()).select(
        F.lit(source_table).alias("source_table"),
        F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"), F.col("_raw").alias("raw_value"),
        F.col("_code").alias("reason_code"), F.col("_reason").alias("reason"),
        F.current_timestamp().alias("quarantined_at"))
    return good, bad


def parse(bronze: DataFrame, payload: Payload, source_table: str,
          max_record_bytes: int = MAX_RECORD_BYTES) -> tuple[DataFrame, DataFrame]:
    """(good, quarantined) for ``bronze`` rows of ``payload``'s topic; see ``annotate``."""
    return split(annotate(bronze, payload, max_record_bytes), payload, source_table)


def classify(annotated: DataFrame, topic: str, source_table: str,
             rules: Sequence[Rule] | None = None
             ) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Apply the topic's row rules to an ``annotate`` result.

    Returns ``(good, quarantine, flagged)``: rows that parsed and pass every drop rule
    (silver columns, not yet deduplicated); quarantine rows for parse failures and drop-rule
    violations (RULE_VIOLATION, naming each rule); and the parsed rows with one violation
    flag per rule, for ``row_rules.violation_counts``. Warn and fail rules keep their rows
    in ``good``; the caller counts them and refuses a batch with a failed ``fail`` rule.
    """
    from pyspark.sql import functions as F

    rules = row_rules.rules_for(topic) if rules is None else rules
    parsed, bad = split(annotated, latest(topic), source_table, keep_raw=True)
    flagged = row_rules.evaluate(parsed, rules)
    kept, dropped = row_rules.split(flagged, rules)
    dropped = dropped.select(
        F.lit(source_table).alias("source_table"), "kafka_topic", "kafka_partition",
        "kafka_offset", F.col("_raw").alias("raw_value"),
        F.lit(row_rules.RULE_VIOLATION).alias("reason_code"),
        F.concat(F.lit("row rule "), F.col("_reason")).alias("reason"),
        F.current_timestamp().alias("quarantined_at"))
    return kept.drop("_raw"), bad.unionByName(dropped), flagged


def dedupe(good: DataFrame) -> DataFrame:
    """Keep the first delivery (lowest Kafka coordinates) of every ``event_id``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("event_id").orderBy("kafka_partition", "kafka_offset")
    return good.withColumn("_n", F.row_number().over(w)).where("_n = 1").drop("_n")
