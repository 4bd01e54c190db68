"""How a gold job is declared: once, next to its pure transform.

A gold job is one ``GoldJob`` value named ``JOB`` in a module of ``jobs/``: its name, the
catalog tables it reads and writes, the pure transform from the first to the second, how
it runs incrementally, and a description. The runner (``jobs/runner.py``) finds every
declaration, orders the jobs by their tables, reads the inputs through the catalog, writes
the outputs through ``redline.lake`` and records each run in ``ops.job_runs``: nothing
else lists jobs or their tables.

The transform takes the input DataFrames by table (``Inputs``) and returns the output
DataFrames by table, in the order they are written. An output computed from an earlier
output is given as a function of the outputs written before it (``Derived``): a full run
hands it those tables as written (read back, not recomputed), an incremental run the
DataFrames just computed.

A transform that reads analysis settings (``redline.config.AnalysisConfig``: SPC
baselines, capability periods, attribution periods) gets them as plain values from its
inputs (``Inputs.settings``; the defaults when the caller gives none) and names the ones it
reads in its declaration (``GoldJob.settings``): each run records them, and a change
between runs makes the next run recompute what they decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from redline.catalog import Layer, Table
from redline.config import AnalysisConfig
from redline.errors import RedlineError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


Derived = Callable[[Mapping[Table, "DataFrame"]], "DataFrame"]
"""An output computed from outputs the same job writes before it."""

Outputs = Mapping[Table, Union["DataFrame", Derived]]


class Inputs(Mapping[Table, "DataFrame"]):
    """The input DataFrames of one run of a transform, by table.

    Besides the DataFrames it carries what a transform may ask of its run: the analysis
    settings (``settings``), a DataFrame kept in memory until the outputs are written
    (``cache``), and figures recorded with the run (``note``).
    """

    def __init__(self, frames: Mapping[Table, DataFrame],
                 settings: AnalysisConfig | None = None) -> None:
        self._frames = dict(frames)
        self.settings = settings if settings is not None else AnalysisConfig()
        """The analysis settings of the run (the defaults unless configured)."""
        self._cached: list[DataFrame] = []
        self.notes: dict[str, object] = {}

    def __getitem__(self, table: Table) -> DataFrame:
        try:
            return self._frames[table]
        except KeyError:
            raise RedlineError(
                "JOB_INPUT_UNDECLARED",
                f"{table.qualified_name} is not an input of this job; declare it in the "
                f"job's inputs") from None

    def __iter__(self) -> Iterator[Table]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def cache(self, df: DataFrame) -> DataFrame:
        """``df`` persisted until the run's outputs are written (released on error too)."""
        self._cached.append(df.cache())
        return df

    def note(self, **metrics: object) -> None:
        """Figures recorded in the run's metrics (``ops.job_runs``)."""
        self.notes.update(metrics)

    def release(self) -> None:
        for df in self._cached:
            df.unpersist()
        self._cached.clear()


Transform = Callable[[Inputs], Outputs]


# --- incremental strategies (see jobs/incremental.py) -------------------------------------

@dataclass(frozen=True)
class Source:
    """How the rows of one silver input map to keys of the job's outputs."""

    table: Table
    key: Callable[[DataFrame], DataFrame]
    """Adds the key columns (named as in the outputs) to rows of the table, one key per
    row."""
    entity: tuple[str, ...] = ()
    """Columns that tie rows together in the transform (see jobs/incremental.py); empty
    when a key's output depends on the rows of that key only."""


@dataclass(frozen=True)
class Keyed:
    """The job's transform can recompute a subset of its output keys: it runs on the rows
    of the affected keys only, and exactly those keys are replaced."""

    key: tuple[str, ...]
    """Key columns, present in every output table."""
    sources: tuple[Source, ...]
    """One per input table of the job."""


@dataclass(frozen=True)
class Tail:
    """The job has its own incremental path, given the changed rows of its one input (SPC:
    ``spc_tail``)."""

    table: Table
    update: Callable[[SparkSession, str, DataFrame, DataFrame, AnalysisConfig, bool], dict]
    """(spark, lake root, the input at the version read, its changed rows (maybe none),
    the analysis settings, whether the job's settings changed since its last run) ->
    metrics, with ``mode``; writes the outputs."""


@dataclass(frozen=True)
class Full:
    """The job recomputes in full whenever an input changed, for ``reason``."""

    reason: str = "no incremental strategy declared"


Strategy = Keyed | Tail | Full


@dataclass(frozen=True)
class GoldJob:
    """One gold job: everything the runner needs to know about it."""

    name: str
    description: str
    inputs: tuple[Table, ...]
    outputs: tuple[Table, ...]
    transform: Transform
    incremental: Strategy = Full()
    settings: tuple[str, ...] = ()
    """The ``AnalysisConfig`` fields its transform reads (overrides included): a run
    records their fingerprint, and when it differs from the last run's, a ``Keyed`` or
    ``Full`` job rebuilds in full and a ``Tail`` job's update is told."""

    def __post_init__(self) -> None:
        if not self.name.startswith("gold_"):
            raise RedlineError("JOB_DECLARATION", f"gold job {self.name!r}: names start "
                                                  f"with 'gold_'")
        if not self.inputs or not self.outputs:
            raise RedlineError("JOB_DECLARATION",
                               f"gold job {self.name!r} declares no inputs or no outputs")
        wrong = [t.qualified_name for t in self.outputs if t.layer is not Layer.GOLD]
        if wrong:
            raise RedlineError("JOB_DECLARATION", f"gold job {self.name!r} writes "
                                                  f"{', '.join(wrong)}: not gold tables")
        strategy_tables = ([s.table for s in self.incremental.sources]
                           if isinstance(self.incremental, Keyed)
                           else [self.incremental.table]
                           if isinstance(self.incremental, Tail) else [])
        known = {f.name for f in dataclasses.fields(AnalysisConfig)} - {"characteristic"}
        unknown = sorted(set(self.settings) - known)
        if unknown:
            raise RedlineError("JOB_DECLARATION", f"gold job {self.name!r} reads settings "
                                                  f"{unknown}: not fields of AnalysisConfig "
                                                  f"({', '.join(sorted(known))})")
        stray = [t.qualified_name for t in strategy_tables if t not in self.inputs]
        if stray:
            raise RedlineError("JOB_DECLARATION", f"gold job {self.name!r}: its incremental "
                                                  f"strategy reads {', '.join(stray)}, "
                                                  f"not an input")
