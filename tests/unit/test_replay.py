"""Readers of the public data sets: counts, types, order and deterministic event ids."""

import gzip
import hashlib
import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from redline.config import PROJECT_ROOT, load
from redline.errors import RedlineError
from redline.schemas.payloads import latest
from redline.streaming.replay import events

ROOT = load("local").replay.datasets_dir
CMAPSS = ROOT / "cmapss"
AI4I = ROOT / "ai4i2020" / "ai4i2020.csv.gz"
SHIPPED = PROJECT_ROOT / "datasets"


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return [ln for ln in fh if ln.strip()]


def _header(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig") as fh:
        return fh.readline().rstrip("\r\n")


def test_train_fd001_has_one_event_per_line_in_file_order():
    lines = _lines(CMAPSS / "train_FD001.txt.gz")
    got = list(events(ROOT, "cmapss", ["train_FD001"]))
    assert len(lines) == 20631
    assert len(got) == len(lines)
    first = lines[0].split()
    assert got[0].payload["unit_id"] == int(first[0]) == 1
    assert got[0].payload["cycle"] == int(first[1]) == 1
    assert got[0].payload["sensor_21"] == float(first[25])
    assert [(e.payload["unit_id"], e.payload["cycle"]) for e in got] == [
        (int(ln.split()[0]), int(ln.split()[1])) for ln in lines]


def test_cmapss_events_match_the_schema_and_keep_per_engine_order():
    got = list(events(ROOT, "cmapss", ["train_FD001", "test_FD001"]))
    declared = {f.name for f in latest("cmapss_cycles").struct.fields}
    assert all(set(e.payload) == declared for e in got[:50])
    p = got[0].payload
    assert isinstance(p["unit_id"], int) and isinstance(p["op_setting_1"], float)
    assert all(e.key == e.payload["engine_id"] and e.topic == "cmapss_cycles" for e in got)
    assert {e.payload["split"] for e in got} == {"train", "test"}
    by_engine: dict[str, list[int]] = {}
    for e in got:
        by_engine.setdefault(e.key, []).append(e.payload["cycle"])
    assert len(by_engine) == 200  # unit ids repeat across files; engine ids do not
    assert all(c == list(range(1, len(c) + 1)) for c in by_engine.values())
    times = [datetime.fromisoformat(e.payload["event_time"]) for e in got if e.key == got[0].key]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_gz_file_reads_like_its_plain_copy(tmp_path):
    (tmp_path / "cmapss").mkdir()
    with gzip.open(CMAPSS / "train_FD001.txt.gz", "rb") as src, \
            open(tmp_path / "cmapss" / "train_FD001.txt", "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain = list(events(tmp_path, "cmapss", ["train_FD001"], limit=500))
    packed = list(events(ROOT, "cmapss", ["train_FD001"], limit=500))
    assert [e.payload for e in packed] == [e.payload for e in plain]
    fd002 = _lines(CMAPSS / "train_FD002.txt.gz")
    assert sum(1 for _ in events(ROOT, "cmapss", ["train_FD002"])) == len(fd002) == 53759


def test_event_ids_are_deterministic_and_unique():
    a = [e.payload["event_id"] for e in events(ROOT, "cmapss", ["train_FD001"])]
    b = [e.payload["event_id"] for e in events(ROOT, "cmapss", ["train_FD001"])]
    assert a == b and len(set(a)) == len(a)
    other = [e.payload["event_id"] for e in events(ROOT, "cmapss", ["test_FD001"])]
    assert not set(a) & set(other)
    ai = [e.payload["event_id"] for e in events(ROOT, "ai4i")]
    assert ai == [e.payload["event_id"] for e in events(ROOT, "ai4i")]
    assert len(set(ai)) == len(ai) and not set(ai) & set(a)


def test_ai4i_rows_types_and_labels():
    lines = _lines(AI4I)
    got = list(events(ROOT, "ai4i"))
    assert len(got) == len(lines) - 1 == 10000  # minus the header
    declared = {f.name for f in latest("ai4i_process").struct.fields}
    assert all(set(e.payload) == declared for e in got)
    assert [e.payload["udi"] for e in got] == list(range(1, 10001))
    first = got[0].payload
    assert (first["product_id"], first["type"], first["rotational_speed_rpm"],
            first["torque_nm"], first["machine_failure"]) == ("M14860", "M", 1551, 42.8, False)
    assert got[0].key == "M14860"
    # label counts documented in ai4i2020/SOURCE.md
    assert sum(e.payload["machine_failure"] for e in got) == 339
    assert [sum(e.payload[m] for e in got) for m in ("twf", "hdf", "pwf", "osf", "rnf")] == [
        46, 115, 95, 98, 19]


def test_limit_and_bad_input_fail_clearly(tmp_path):
    assert len(list(events(ROOT, "ai4i", limit=7))) == 7
    with pytest.raises(RedlineError, match="no data set 'scania'"):
        events(ROOT, "scania")
    with pytest.raises(RedlineError, match="train_FD009.txt .*not in"):
        events(ROOT, "cmapss", ["train_FD009"])
    (tmp_path / "cmapss").mkdir()
    (tmp_path / "cmapss" / "train_FD001.txt").write_text("1 1 0.1 0.2 100.0 x\n")
    with pytest.raises(RedlineError, match=r"train_FD001.txt:1: 6 columns, expected 26"):
        list(events(tmp_path, "cmapss", ["train_FD001"]))
    (tmp_path / "ai4i2020").mkdir()
    (tmp_path / "ai4i2020" / "ai4i2020.csv").write_text(
        _header(AI4I) + "\n1,M1,M,a,1,1,1,1,0,0,0,0,0,0\n")
    with pytest.raises(RedlineError, match=r"column Air temperature \[K\] value 'a'"):
        list(events(tmp_path, "ai4i"))


def test_datasets_folder_is_configurable(tmp_path):
    cfg = load("local", {"REDLINE_REPLAY_DATASETS": str(tmp_path)})
    assert cfg.replay.datasets_dir == tmp_path
    with pytest.raises(RedlineError, match="REDLINE_REPLAY_DATASETS"):
        events(cfg.replay.datasets_dir, "ai4i")


def test_cli_parses_replay():
    from redline.cli import build_parser

    args = build_parser().parse_args(
        ["replay", "cmapss", "--files", "train_FD001", "test_FD004", "--rate", "500",
         "--limit", "10"])
    assert (args.dataset, args.files, args.rate, args.limit) == (
        "cmapss", ["train_FD001", "test_FD004"], 500.0, 10)


def test_data_sets_ship_in_the_repository_by_default():
    assert load("local", {}).replay.datasets_dir == SHIPPED
    assert (SHIPPED / "cmapss" / "train_FD001.txt.gz").is_file()
    assert (SHIPPED / "ai4i2020" / "ai4i2020.csv.gz").is_file()


def test_shipped_files_match_sha256sums():
    listed = {}
    for row in (SHIPPED / "SHA256SUMS").read_text().splitlines():
        digest, name = row.split("  ", 1)
        listed[name] = digest
    shipped = {p.relative_to(SHIPPED).as_posix() for p in SHIPPED.rglob("*") if p.is_file()}
    assert set(listed) == shipped - {"README.md", "SHA256SUMS", "SHA256SUMS.uncompressed"}
    assert {n for n in listed if n.endswith(".gz")} >= {
        f"cmapss/{split}_FD00{i}.txt.gz" for split in ("train", "test") for i in range(1, 5)
    } | {"ai4i2020/ai4i2020.csv.gz"}
    assert not [n for n in shipped if "RUL" in n]  # true test RUL never ships
    for name, digest in listed.items():
        assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == digest, name
    uncompressed = dict(row.split("  ", 1)[::-1] for row in
                        (SHIPPED / "SHA256SUMS.uncompressed").read_text().splitlines())
    assert set(uncompressed) == {n[:-3] for n in listed if n.endswith(".gz")}
    for name, digest in uncompressed.items():
        with gzip.open(SHIPPED / f"{name}.gz", "rb") as fh:
            assert hashlib.file_digest(fh, "sha256").hexdigest() == digest, name


def test_missing_file_or_folder_says_where_the_data_is_expected(tmp_path):
    (tmp_path / "cmapss").mkdir()
    folder = re.escape(str(tmp_path / "cmapss"))
    with pytest.raises(RedlineError, match=rf"REPLAY_FILE_MISSING.*not in {folder};.*"
                                           rf"datasets/ folder.*REDLINE_REPLAY_DATASETS"):
        events(tmp_path, "cmapss", ["train_FD001"])
    gone = re.escape(str(tmp_path / "nowhere"))
    with pytest.raises(RedlineError, match=rf"REPLAY_DATASETS_MISSING.*folder {gone} does not "
                                           rf"exist.*datasets/ folder.*REDLINE_REPLAY_DATASETS"):
        events(tmp_path / "nowhere", "ai4i")
