"""The quality gate's Data Docs: a file-backed GX site that keeps every run, opened in
headless Chromium like a release manager would."""

from datetime import date

import pytest
from PIL import Image

from redline import catalog
from redline import lake as lake_io
from redline.dashboards.screenshot import page
from redline.quality.gate import run_gate
from redline.schemas.tables import FIRST_PASS_YIELD

pytestmark = pytest.mark.integration

D = date(2026, 1, 5)


def test_data_docs_keep_every_run_and_open_in_a_browser(spark, lake, tmp_path):
    docs = tmp_path / "quality"
    runs = []
    for fpy in (0.9, 1.7):  # a good version, then one with a rate above 1
        lake_io.overwrite(spark.createDataFrame(
            [(D, "PLT-A", "L1", "S010", 10, 9, fpy)], FIRST_PASS_YIELD),
            lake, catalog.FIRST_PASS_YIELD)
        runs.append(run_gate(spark, lake, tmp_path / "reports",
                             tables=["gold.first_pass_yield"], progress=lambda _: None,
                             docs_root=docs))
    assert [g.exit_code for g in runs] == [0, 1]
    index = runs[-1].docs_index
    assert index is not None and index.is_file() and index.is_relative_to(docs)
    # One validation page per run: the site is the history.
    pages = sorted((index.parent / "validations").rglob("*.html"))
    assert len(pages) == 2, pages

    # The index lists both runs. (Its filterable table is drawn by scripts the page loads
    # from CDNs, which this machine cannot reach; the run pages are plain HTML.)
    html = index.read_text()
    assert all(p.relative_to(index.parent).as_posix() in html for p in pages)

    shot = tmp_path / "data_docs_failed_run.png"
    text = page(pages[-1].as_uri(), shot)
    assert "Expectation Suite: gold.first_pass_yield" in text
    assert "Status: Failed" in text and "fpy" in text, text[:800]
    image = Image.open(shot).convert("L")
    low, high = image.getextrema()
    assert image.size[0] >= 1000 and high - low > 50, "blank screenshot"
    assert "Status: Succeeded" in page(pages[0].as_uri(), tmp_path / "data_docs_first_run.png")
