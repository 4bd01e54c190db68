"""Row rules applied in the silver stream, with the actions Delta Live Tables users know.

A rule is a SQL boolean expression over the parsed (typed) record that must hold, and an
action for a record where it does not:

``warn``  the record lands in silver; the violation is counted (``expect``).
``drop``  the record goes to quarantine with reason code RULE_VIOLATION and the rule's
          name and description (``expect_or_drop``; nothing is dropped silently).
``fail``  the whole micro-batch is refused before anything is written and the stream
          stops with ROW_RULE_FAILED naming the rule, the count and a sample record
          (``expect_or_fail``). The batch is retried on restart, so a fix to the data or
          the rule is needed to go on.

A rule holds only where its expression is TRUE: NULL counts as a violation, so a rule on
an optional field says what to do with NULL (``speed_kph IS NULL OR ...``). Every batch's
counts per rule are recorded in ``ops.silver_batches`` (see streaming/silver.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

Action = Literal["warn", "drop", "fail"]
ACTIONS: tuple[Action, ...] = ("warn", "drop", "fail")
RULE_VIOLATION = "RULE_VIOLATION"


@dataclass(frozen=True)
class Rule:
    name: str
    expression: str
    """Spark SQL boolean expression over the silver columns; TRUE means the row is fine."""
    action: Action
    description: str

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"rule {self.name}: action {self.action!r} is not one of {ACTIONS}")

    def holds(self) -> Column:
        from pyspark.sql import functions as F

        return F.coalesce(F.expr(self.expression), F.lit(False))


# An event from more than a day in the future (a clock set to year 3000) or from before
# the platform's epoch cannot be placed on any KPI's time axis.
EVENT_TIME_PLAUSIBLE = Rule(
    "event_time_plausible",
    "event_time >= TIMESTAMP'2000-01-01 00:00:00' "
    "AND event_time <= current_timestamp() + INTERVAL 1 DAY",
    "drop", "event_time is between 2000-01-01 and one day after ingest time")

_VEHICLE = [EVENT_TIME_PLAUSIBLE]

#: The rules of every topic's silver stage. Topics without an entry get the envelope rule.
RULES: Mapping[str, Sequence[Rule]] = {
    "vehicle_telemetry": [
        *_VEHICLE,
        Rule("odometer_non_negative", "odometer_km >= 0", "drop",
             "odometer_km is not negative"),
        Rule("battery_soc_in_range",
             "battery_soc_pct IS NULL OR battery_soc_pct BETWEEN 0 AND 100", "drop",
             "battery_soc_pct is a percentage (0-100) when present"),
        Rule("speed_plausible", "speed_kph IS NULL OR speed_kph BETWEEN 0 AND 300", "warn",
             "speed_kph is between 0 and 300 when present"),
    ],
    "vehicle_dtc": [*_VEHICLE],
    "vehicle_builds": [
        *_VEHICLE,
        Rule("has_components", "size(components) > 0", "drop",
             "a build lists at least one component"),
    ],
    "station_results": [
        EVENT_TIME_PLAUSIBLE,
        Rule("attempt_positive", "attempt >= 1", "drop", "attempt counts from 1"),
        Rule("result_known", "result IN ('PASS', 'FAIL', 'SCRAP')", "drop",
             "result is PASS, FAIL or SCRAP"),
        Rule("cycle_time_plausible", "cycle_time_s IS NULL OR cycle_time_s BETWEEN 0 AND 3600",
             "warn", "cycle_time_s is between 0 and 3,600 s when present"),
    ],
    "warranty_claims": [
        EVENT_TIME_PLAUSIBLE,
        Rule("cost_non_negative", "cost_eur IS NULL OR cost_eur >= 0", "warn",
             "cost_eur is not negative when present"),
    ],
    # Replayed public data sets: a non-positive cycle means the wrong file was replayed,
    # which no quarantine can repair; stop and say so.
    "cmapss_cycles": [
        EVENT_TIME_PLAUSIBLE,
        Rule("cycle_positive", "cycle >= 1", "fail", "C-MAPSS cycles count from 1"),
    ],
    "ai4i_process": [EVENT_TIME_PLAUSIBLE],
}


def rules_for(topic: str) -> Sequence[Rule]:
    return RULES.get(topic, [EVENT_TIME_PLAUSIBLE])


def _flag(rule: Rule) -> str:
    return f"_rule_{rule.name}"


def evaluate(good: DataFrame, rules: Sequence[Rule]) -> DataFrame:
    """``good`` with one boolean column per rule, TRUE where the row violates it."""
    return good.select("*", *[(~r.holds()).alias(_flag(r)) for r in rules])


def violation_counts(flagged: DataFrame, rules: Sequence[Rule]) -> dict[str, int]:
    """Rows violating each rule, from the output of ``evaluate`` (one pass)."""
    return tally(flagged, rules)[0]


def tally(flagged: DataFrame, rules: Sequence[Rule], *extra: Column
          ) -> tuple[dict[str, int], int, tuple]:
    """(rows violating each rule, rows breaking at least one drop rule, the values of the
    ``extra`` aggregate expressions), in one pass."""
    from pyspark.sql import functions as F

    row = flagged.agg(*[F.sum(F.col(_flag(r)).cast("long")).alias(r.name) for r in rules],
                      F.sum(dropped_any(rules).cast("long")).alias("_dropped"),
                      *extra).first()
    n = len(rules) + 1
    return ({r.name: int(row[r.name] or 0) for r in rules}, int(row["_dropped"] or 0),
            tuple(row[n:]))


def dropped_any(rules: Sequence[Rule]) -> Column:
    """TRUE for a row of an ``evaluate`` output that breaks at least one drop rule."""
    from functools import reduce

    from pyspark.sql import functions as F

    drops = [F.col(_flag(r)) for r in rules if r.action == "drop"]
    return reduce(lambda a, b: a | b, drops) if drops else F.lit(False)


def split(flagged: DataFrame, rules: Sequence[Rule]) -> tuple[DataFrame, DataFrame]:
    """(kept, dropped) rows of an ``evaluate`` output, without the flag columns.

    ``dropped`` carries ``_reason``: every drop rule the row violates, by name.
    """
    from pyspark.sql import functions as F

    flags = [_flag(r) for r in rules]
    drops = [r for r in rules if r.action == "drop"]
    reason = F.concat_ws("; ", *[F.when(F.col(_flag(r)), F.lit(f"{r.name}: {r.description}"))
                                 for r in drops]) if drops else F.lit(None).cast("string")
    dropped = dropped_any(rules)
    kept = flagged.where(~dropped).drop(*flags)
    return kept, flagged.where(dropped).withColumn("_reason", reason).drop(*flags)


def failures(counts: Mapping[str, int], rules: Sequence[Rule]) -> list[Rule]:
    return [r for r in rules if r.action == "fail" and counts.get(r.name, 0) > 0]
