"""Replay public data sets through Kafka, along the same path as the simulator's events.

The readers are pure generators: a source file in, ``Event`` objects out, in the file's
own order. Kafka keeps order per partition, and the message key (one engine, one
product) picks the partition, so every key's events arrive in source order.

Neither data set has a clock, so ``event_time`` is synthesised deterministically:

- C-MAPSS: ``CMAPSS_EPOCH + cycle * CMAPSS_CYCLE`` (every engine starts at the epoch; one
  operating cycle counts as one hour).
- AI4I 2020: ``AI4I_EPOCH + UDI * AI4I_STEP`` (UDI is the process run's sequence number).

``event_id`` is ``uuid5(REPLAY_NAMESPACE, "<data set>/<file>/<line>")`` (the file named
without ``.gz``), so replaying a file twice produces the same ids and silver keeps each
row once.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from redline.config import Config
from redline.errors import RedlineError
from redline.streaming.simulator import Event

REPLAY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "redline:replay")
CMAPSS_EPOCH = datetime(2008, 1, 1, tzinfo=UTC)  # the PHM08 challenge year
CMAPSS_CYCLE = timedelta(hours=1)
AI4I_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
AI4I_STEP = timedelta(minutes=1)

CMAPSS_COLUMNS = 26
#: AI4I 2020 CSV header -> payload field, in file order.
AI4I_COLUMNS: dict[str, str] = {
    "UDI": "udi",
    "Product ID": "product_id",
    "Type": "type",
    "Air temperature [K]": "air_temperature_k",
    "Process temperature [K]": "process_temperature_k",
    "Rotational speed [rpm]": "rotational_speed_rpm",
    "Torque [Nm]": "torque_nm",
    "Tool wear [min]": "tool_wear_min",
    "Machine failure": "machine_failure",
    "TWF": "twf",
    "HDF": "hdf",
    "PWF": "pwf",
    "OSF": "osf",
    "RNF": "rnf",
}
_AI4I_INT = {"udi", "rotational_speed_rpm", "tool_wear_min"}
_AI4I_FLOAT = {"air_temperature_k", "process_temperature_k", "torque_nm"}
_AI4I_FLAG = {"machine_failure", "twf", "hdf", "pwf", "osf", "rnf"}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event_id(dataset: str, stem: str, line: int) -> str:
    return str(uuid.uuid5(REPLAY_NAMESPACE, f"{dataset}/{stem}/{line}"))


def _stem(path: Path) -> str:
    """File name without ``.gz``: a compressed copy replays with the same event ids."""
    return path.name[:-3] if path.name.endswith(".gz") else path.name


def _open(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _bad(path: Path, line: int, what: str) -> RedlineError:
    return RedlineError("REPLAY_BAD_ROW", f"{path}:{line}: {what}; is this the original file?")


def _num(path: Path, line: int, column: str, text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise _bad(path, line, f"column {column} value {text!r} is not "
                               f"{'an integer' if kind is int else 'a number'}") from None


# -- readers -------------------------------------------------------------------------------
def read_cmapss(path: Path) -> Iterator[Event]:
    """Events of one C-MAPSS file (``train_FD001.txt``, ``test_FD002.txt.gz``, ...)."""
    stem = _stem(path)
    split, _, rest = stem.partition("_")
    dataset = rest.split(".")[0]
    if split not in ("train", "test") or not dataset.startswith("FD"):
        raise RedlineError("REPLAY_FILE_NAME",
                           f"{path.name} is not a C-MAPSS file name like train_FD001.txt")
    with _open(path) as fh:
        for line, text in enumerate(fh, 1):
            cols = text.split()
            if not cols:
                continue
            if len(cols) != CMAPSS_COLUMNS:
                raise _bad(path, line, f"{len(cols)} columns, expected {CMAPSS_COLUMNS}")
            unit = _num(path, line, "unit", cols[0], int)
            cycle = _num(path, line, "cycle", cols[1], int)
            values = [_num(path, line, f"#{i + 3}", v, float) for i, v in enumerate(cols[2:])]
            engine = f"{dataset}-{split}-{unit:03d}"
            payload = {
                "event_id": _event_id("cmapss", stem, line),
                "event_time": _iso(CMAPSS_EPOCH + cycle * CMAPSS_CYCLE),
                "schema_version": 1,
                "engine_id": engine, "dataset": dataset, "split": split,
                "unit_id": unit, "cycle": cycle,
                **{f"op_setting_{i}": values[i - 1] for i in range(1, 4)},
                **{f"sensor_{i}": values[i + 2] for i in range(1, 22)},
            }
            yield Event("cmapss_cycles", engine, payload)


def read_ai4i(path: Path) -> Iterator[Event]:
    """Events of the AI4I 2020 CSV (header checked against ``AI4I_COLUMNS``)."""
    stem = _stem(path)
    with _open(path) as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if header != list(AI4I_COLUMNS):
            raise RedlineError(
                "REPLAY_BAD_HEADER",
                f"{path}: header {header} differs from the AI4I 2020 columns "
                f"{list(AI4I_COLUMNS)}; is this the original ai4i2020.csv?")
        for line, row in enumerate(rows, 2):
            if not row:
                continue
            if len(row) != len(AI4I_COLUMNS):
                raise _bad(path, line, f"{len(row)} columns, expected {len(AI4I_COLUMNS)}")
            rec: dict = {}
            for (column, name), text in zip(AI4I_COLUMNS.items(), row):
                if name in _AI4I_INT:
                    rec[name] = _num(path, line, column, text, int)
                elif name in _AI4I_FLOAT:
                    rec[name] = _num(path, line, column, text, float)
                elif name in _AI4I_FLAG:
                    if text not in ("0", "1"):
                        raise _bad(path, line, f"column {column} value {text!r} is not 0 or 1")
                    rec[name] = text == "1"
                else:
                    rec[name] = text
            payload = {"event_id": _event_id("ai4i", stem, line),
                       "event_time": _iso(AI4I_EPOCH + rec["udi"] * AI4I_STEP),
                       "schema_version": 1, **rec}
            yield Event("ai4i_process", rec["product_id"], payload)


@dataclass(frozen=True)
class Dataset:
    """A replayable data set: where its files are and how to read one."""

    name: str
    folder: str
    """Sub-folder of the data-set root (``replay.datasets``)."""
    topic: str
    files: tuple[str, ...]
    """Default files, named without ``.txt``/``.csv``/``.gz``, in replay order."""
    suffix: str
    reader: Callable[[Path], Iterator[Event]]


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("cmapss", "cmapss", "cmapss_cycles",
            tuple(f"{split}_FD00{i}" for split in ("train", "test") for i in range(1, 5)),
            ".txt", read_cmapss),
    Dataset("ai4i", "ai4i2020", "ai4i_process", ("ai4i2020",), ".csv", read_ai4i),
)}


def dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise RedlineError("REPLAY_UNKNOWN_DATASET",
                           f"no data set {name!r}; known: {', '.join(DATASETS)}") from None


_WHERE = ("the data sets ship gzip-compressed in the repository's datasets/ folder, which "
          "is the default; set REDLINE_REPLAY_DATASETS to a folder laid out the same way "
          "(<folder>/cmapss, <folder>/ai4i2020) to read them from elsewhere")


def locate(root: Path, ds: Dataset, file: str) -> Path:
    """Path of ``file`` of ``ds`` under ``root``: plain or ``.gz``, with or without suffix."""
    if not root.is_dir():
        raise RedlineError(
            "REPLAY_DATASETS_MISSING",
            f"data-set folder {root} does not exist (looked for {ds.name} in {root / ds.folder}); "
            f"{_WHERE}")
    folder = root / ds.folder
    base = file[:-3] if file.endswith(".gz") else file
    base = base if base.endswith(ds.suffix) else base + ds.suffix
    for candidate in (folder / base, folder / (base + ".gz")):
        if candidate.is_file():
            return candidate
    raise RedlineError(
        "REPLAY_FILE_MISSING",
        f"{base} (or {base}.gz) is not in {folder}; "
        f"files of {ds.name}: {', '.join(ds.files)}; {_WHERE}")


def events(root: Path, name: str, files: Sequence[str] | None = None,
           limit: int | None = None) -> Iterator[Event]:
    """Events of data set ``name``, file after file in the given order, at most ``limit``."""
    ds = dataset(name)
    paths = [locate(root, ds, f) for f in (files or ds.files)]  # fail before producing
    stream: Iterable[Event] = itertools.chain.from_iterable(ds.reader(p) for p in paths)
    if limit is not None:
        if limit < 0:
            raise RedlineError("REPLAY_LIMIT", f"--limit must be >= 0, got {limit}")
        stream = itertools.islice(stream, limit)
    return iter(stream)


def replay(cfg: Config, name: str, files: Sequence[str] | None = None, rate: float = 0.0,
           limit: int | None = None, **produce_kwargs):
    """Publish data set ``name`` to its topic at ``rate`` events/s (0 = as fast as possible).

    Returns the producer's ``ProduceReport`` (acknowledged counts per topic).
    """
    from redline.streaming.producer import ensure_topics, produce

    stream = events(cfg.replay.datasets_dir, name, files, limit)
    ensure_topics(cfg)
    return produce(cfg, stream, rate=rate, **produce_kwargs)


def silver_offline(spark, root: Path, name: str, files: Sequence[str] | None = None):
    """Data set ``name`` as rows of its silver table without Kafka (benchmarks and tests
    that start at silver): the payloads the replay would publish, with the silver
    envelope filled in as if every event had landed in partition 0 in file order."""
    from redline.schemas import tables
    from redline.schemas.payloads import latest

    ds = dataset(name)
    schema = tables.silver(latest(ds.topic))
    rows = []
    for offset, event in enumerate(events(root, name, files)):
        row = {**event.payload, "kafka_topic": ds.topic, "kafka_partition": 0,
               "kafka_offset": offset,
               "event_time": datetime.fromisoformat(event.payload["event_time"])}
        rows.append(tuple(row.get(f.name) for f in schema.fields))
    return spark.createDataFrame(rows, schema)
