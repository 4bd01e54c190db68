"""Where the managed object store's binary is looked for; what the Thrift Server does with
an object-store lake."""

from __future__ import annotations

import sysconfig

import pytest

from redline.errors import RedlineError
from redline.services import objectstore


def test_weed_is_looked_for_beside_this_pythons_scripts(tmp_path, monkeypatch):
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    (tmp_path / "weed").write_text("#!/bin/sh\n")
    assert objectstore.weed_binary() == tmp_path / "weed"


def test_missing_weed_names_the_make_target(tmp_path, monkeypatch):
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    with pytest.raises(RedlineError) as err:
        objectstore.weed_binary()
    assert err.value.code == "OBJECTSTORE_MISSING"
    assert "run `make objectstore`" in str(err.value)
    assert str(tmp_path / "weed") in str(err.value)


def test_thrift_server_reads_local_lakes_only():
    from redline.services.thrift import ThriftServer

    assert ThriftServer.reads("/data/lake") and ThriftServer.reads("file:///data/lake")
    assert not ThriftServer.reads("s3a://bucket/lake")


def test_a_refused_registration_quotes_the_servers_first_line():
    from types import SimpleNamespace

    from redline.services.thrift import _server_message

    status = SimpleNamespace(errorMessage="Error running query: java.lang.RuntimeException: "
                                          "Class S3AFileSystem not found\n\tat org.apache.x")
    exc = RuntimeError(SimpleNamespace(status=status))
    assert _server_message(exc) == ("Error running query: java.lang.RuntimeException: "
                                    "Class S3AFileSystem not found")
    assert _server_message(RuntimeError("plain")) == "plain"
