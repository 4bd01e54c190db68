"""Kafka lag in ingest's status line, from a bronze query's last progress as Spark 4
reports it (offsets as JSON strings; the shape was read from a real query)."""

from redline.streaming.ingest import kafka_lag, status_line
from redline.streaming.silver import BatchStats


def _progress(latest: str, end: str) -> dict:
    return {"batchId": 3, "sources": [{"startOffset": end, "endOffset": end,
                                       "latestOffset": latest,
                                       "metrics": {"avgOffsetsBehindLatest": "0.0"}}]}


def test_the_lag_is_what_kafka_holds_past_the_last_read_offsets():
    progress = _progress('{"t": {"0": 110, "1": 58}}', '{"t": {"0": 100, "1": 50}}')
    assert kafka_lag(progress) == 10 + 8
    # A partition the query has not read yet counts from offset 0.
    assert kafka_lag(_progress('{"t": {"0": 5, "1": 7}}', '{"t": {"0": 5}}')) == 7
    assert kafka_lag(_progress('{"t": {"0": 5}}', '{"t": {"0": 5}}')) == 0
    assert kafka_lag(None) is None
    # Another shape (no offsets yet, a source of another kind): unknown, never an error.
    assert kafka_lag(_progress(None, None)) is None
    assert kafka_lag({"sources": [{"endOffset": "3"}]}) is None


def test_the_status_line_shows_each_topics_lag():
    stats = BatchStats(rows=10, silver=9, quarantined=1)
    line = status_line({"a": 10, "b": 0}, {"a": stats}, 10.0, {"a": 1234, "b": None})
    assert line == "ingest 0:00:10 1 rows/s | a b=10 s=9 q=1 lag=1,234 | b b=0 s=0 q=0 lag=?"
