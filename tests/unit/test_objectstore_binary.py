"""Where the managed object store's binary is looked for, and the error while it is missing."""

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
