"""What a crash or a lost file leaves at the end of a checkpoint's commit log is undone
(``guards.repair_commit_log``) so that Spark reruns the batch; nothing else is touched.

The files are laid out as Spark writes them (``commits/<n>`` and its checksum
``commits/.<n>.crc``); the integration test runs Spark on the result
(tests/integration/test_recovery_faults.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from redline.streaming.guards import repair_commit_log

WHOLE = 'v1\n{"nextBatchWatermarkMs":0}'


def _checkpoint(tmp_path: Path, batches: int) -> Path:
    for n in range(batches):
        for log in ("offsets", "commits"):
            folder = tmp_path / log
            folder.mkdir(exist_ok=True)
            (folder / str(n)).write_text(WHOLE)
            (folder / f".{n}.crc").write_bytes(b"crc")
    return tmp_path


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_whole_log_is_left_alone(tmp_path):
    ckpt = _checkpoint(tmp_path, 3)
    said: list[str] = []
    assert repair_commit_log(str(ckpt), "bronze_t", said.append) == []
    assert said == []
    assert _files(ckpt / "commits") == [".0.crc", ".1.crc", ".2.crc", "0", "1", "2"]


@pytest.mark.parametrize("content", [b"", b'v1\n{"nextBat', b"v1\n", b"\xff\xfe"])
def test_a_cut_short_newest_commit_is_removed_with_its_checksum(tmp_path, content):
    ckpt = _checkpoint(tmp_path, 3)
    (ckpt / "commits" / "2").write_bytes(content)
    said: list[str] = []
    assert repair_commit_log(f"file:{ckpt}", "silver_t", said.append) == [2]
    assert _files(ckpt / "commits") == [".0.crc", ".1.crc", "0", "1"]
    assert _files(ckpt / "offsets") == [".0.crc", ".1.crc", ".2.crc", "0", "1", "2"]
    [line] = said
    assert line.startswith(f"silver_t: {ckpt}/commits/2 was unreadable ({len(content)} bytes")
    assert "batch 2 runs again" in line


def test_a_deleted_newest_commit_loses_its_leftover_checksum(tmp_path):
    ckpt = _checkpoint(tmp_path, 3)
    (ckpt / "commits" / "2").unlink()
    said: list[str] = []
    assert repair_commit_log(str(ckpt), "bronze_t", said.append) == [2]
    assert _files(ckpt / "commits") == [".0.crc", ".1.crc", "0", "1"]
    assert said == [f"bronze_t: {ckpt}/commits/2 is missing; removed its leftover checksum "
                    f".2.crc, so batch 2 runs again (its writes are idempotent: nothing is "
                    f"written twice)"]


def test_older_leftovers_are_not_touched(tmp_path):
    """Spark reads the newest commit only and never writes an older one again."""
    ckpt = _checkpoint(tmp_path, 3)
    (ckpt / "commits" / "0").unlink()
    (ckpt / "commits" / "1").write_bytes(b"")
    assert repair_commit_log(str(ckpt), "bronze_t", lambda _: None) == []
    assert _files(ckpt / "commits") == [".0.crc", ".1.crc", ".2.crc", "1", "2"]


def test_no_commit_log_yet_or_an_object_store(tmp_path):
    assert repair_commit_log(str(tmp_path / "new"), "bronze_t", lambda _: None) == []
    assert repair_commit_log("s3a://bucket/ckpt", "bronze_t", lambda _: None) == []
