"""What the dashboards' charts asked Superset for and were given, read from a real
chromium's network log (``redline.dashboards.screenshot.browser(..., network_log=True)``).

pytest puts this folder on ``sys.path``, so a test module imports it as ``chart_requests``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable


def chart_requests(driver) -> list[tuple[dict, dict]]:
    """(request body, response body) of the chart-data calls the page made since the last
    call: what each chart asked for and what it was given to draw. A request whose
    response has not arrived yet is kept for the next call (the log is read once)."""
    if not hasattr(driver, "pending_chart_requests"):
        driver.pending_chart_requests = {}
    sent, done = driver.pending_chart_requests, []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg["method"] == "Network.requestWillBeSent":
            req = params["request"]
            if "/api/v1/chart/data" in req["url"] and req.get("postData"):
                sent[params["requestId"]] = json.loads(req["postData"])
        elif msg["method"] == "Network.loadingFinished" and params["requestId"] in sent:
            done.append(params["requestId"])
    out = []
    for rid in done:
        body = driver.execute_cdp_cmd("Network.getResponseBody", {"requestId": rid})
        out.append((sent.pop(rid), json.loads(body["body"])))
    return out


def wait_for_query(driver, wanted: Callable[[dict], bool], timeout: float = 120
                   ) -> tuple[dict, list[dict]]:
    """(query, rows) of the first chart-data query for which ``wanted(query)`` holds that
    the page sends within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for req, resp in chart_requests(driver):
            for query, result in zip(req["queries"], resp["result"]):
                if wanted(query):
                    return query, result["data"]
        time.sleep(0.5)
    raise AssertionError(f"no chart query {wanted.__doc__ or ''} within {timeout:.0f}s")
