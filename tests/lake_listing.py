"""What the managed object store holds, from SeaweedFS's own filer listing (not Spark's)."""

from __future__ import annotations

from pathlib import Path

import requests


def filer_list(cfg, key_prefix: str) -> list[str]:
    """Names in the folder ``key_prefix`` of the lake's bucket, from the filer's HTTP
    listing (SeaweedFS's own view of the bucket, not Spark's)."""
    store = cfg.objectstore
    url = (f"http://{store.host}:{store.filer_port}/buckets/{store.bucket}/"
           f"{key_prefix.strip('/')}/")
    answer = requests.get(url, headers={"Accept": "application/json"},
                          params={"limit": 10000}, timeout=10)
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return sorted(Path(e["FullPath"]).name for e in answer.json().get("Entries") or [])


def lake_key(cfg, uri: str) -> str:
    """``s3a://bucket/a/b`` -> ``a/b``."""
    assert uri.startswith(f"s3a://{cfg.objectstore.bucket}/"), uri
    return uri[len(f"s3a://{cfg.objectstore.bucket}/"):]
