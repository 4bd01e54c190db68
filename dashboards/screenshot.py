"""Screenshots and PDF reports of deployed dashboards with Debian's chromium +
chromium-driver.

The browser logs in through ``/login/`` (the generated admin credentials unless others are
given), opens the dashboard with ``?standalone=1`` and waits until every chart has drawn (a
canvas, svg or table in each chart container, or Superset's "no results" state for a table
nothing has written yet) before it saves the PNG, or prints the whole page to PDF. A login
page, an error alert or a chart that never draws is an error, never a picture of the wrong
thing.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from redline.config import Config
from redline.errors import RedlineError
from redline.services.superset import admin_credentials

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The network is closed and nothing may phone home: no QUIC, sync, updates or probes.
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1600,2800",
)
_WINDOW = (1600, 2800)

#: Seconds a dashboard may take to lay out its chart frames before it is loaded again,
#: and how many times.
LAYOUT_S, STALL_S, RELOADS = 60.0, 90.0, 2
CHART_SELECTOR = ".dashboard-component-chart-holder"
ERROR_SELECTOR = (f"{CHART_SELECTOR} [role='alert'], {CHART_SELECTOR} .ant-alert-error, "
                  "[data-test='error-message'], [data-test='alert']")

#: Reads the state of a dashboard page in one round trip: its charts, which drew, errors.
_STATE_JS = r"""
const holders = [...document.querySelectorAll(arguments[0])];
const empty = h => /No results|^\s*No data\s*$/im.test(h.innerText || "");
const drawn = h => !h.querySelector(".loading, [role='alert'], .ant-alert")
    && (empty(h) || h.querySelector("canvas, table, .header-line, [class*='big-number']")
        || [...h.querySelectorAll("svg")]
        .some(s => !s.closest(".anticon, [role='img'], button")));
return {
  login: !!document.querySelector("[data-test='login-button'], input#password"),
  url: location.href,
  charts: holders.length,
  drawn: holders.filter(drawn).length,
  empty: holders.filter(h => drawn(h) && empty(h)).map(h => {
      const t = h.querySelector(".header-title, [data-test='editable-title']");
      return t ? t.innerText.trim() : "";}),
  height: Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),
  titles: [...document.querySelectorAll("[data-test='editable-title-input'], " +
      ".header-title, [data-test='slice-header'] .header-title")]
      .map(e => (e.value || e.innerText || "").trim()).filter(Boolean),
  errors: [...document.querySelectorAll(arguments[1])]
      .map(e => e.innerText.trim()).filter(Boolean),
  text: (document.body ? document.body.innerText : "").trim().slice(0, 300),
};
"""


@dataclass
class PageState:
    """What the browser saw on the dashboard when the screenshot was taken."""

    url: str
    charts: int
    drawn: int
    titles: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    """Titles of the charts that drew Superset's "no results" state."""
    seconds: float = 0.0
    """From opening the dashboard until every chart drew."""


def browser(profile: Path, network_log: bool = False):
    """Headless chromium with its own profile folder; with ``network_log`` its requests and
    responses can be read from ``get_log("performance")`` (tests, benchmarks)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            raise RedlineError(
                "BROWSER_MISSING",
                f"{path} not found; install Debian's browser: "
                f"apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)


def standalone(url: str) -> str:
    """``url`` with ``standalone=1`` in its query (no Superset navigation around it)."""
    parts = urlsplit(url)
    query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("standalone="))
    return urlunsplit(parts._replace(query="&".join(filter(None, [query, "standalone=1"]))))


def login(driver, cfg: Config, timeout: float,
          credentials: tuple[str, str] | None = None) -> None:
    """Log in through Superset's /login/ form (as the generated admin by default)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    user, password = credentials or admin_credentials(cfg)
    driver.get(f"{cfg.superset.url}/login/")
    wait = WebDriverWait(driver, timeout)
    try:
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "input#username")))
    except TimeoutException:
        raise RedlineError(
            "SCREENSHOT_LOGIN_FAILED",
            f"no login form at {cfg.superset.url}/login/ within {timeout:.0f}s") from None
    driver.find_element(By.CSS_SELECTOR, "input#username").send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input#password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "[data-test='login-button'], "
                                         "button[type='submit']").click()
    try:
        wait.until(lambda d: "/login" not in urlsplit(d.current_url).path)
    except TimeoutException:
        raise RedlineError(
            "SCREENSHOT_LOGIN_FAILED",
            f"logging in to {cfg.superset.url} as {user!r} did not leave the login page "
            f"within {timeout:.0f}s (wrong password? reset the Superset state folder)"
        ) from None


def open_dashboard(driver, url: str, timeout: float) -> PageState:
    """Open ``url`` standalone in a logged-in ``driver`` and wait until every chart drew.

    Raises ``RedlineError`` on a login page, an error alert, or charts that do not draw
    within ``timeout`` seconds.
    """
    target = standalone(url)
    began = time.monotonic()
    driver.get(target)
    deadline = began + timeout
    # A dashboard lays out its chart frames within seconds, long before they draw. A page
    # with no frame at all after LAYOUT_S lost a request of the app's start (seen once in
    # CI, on a busy machine: 0 of 0 charts for 300 s): it is loaded again, as a person
    # would, at most RELOADS times.
    # Likewise a chart whose query has not answered for STALL_S while the others drew
    # (seen once in CI: "Waiting on redline_lake" for 300 s, 5 of 6 charts drawn).
    layout_deadline, reloads = began + min(LAYOUT_S, timeout / 3), 0
    state: dict = {}
    progress, progress_at = None, began
    while time.monotonic() < deadline:
        state = driver.execute_script(_STATE_JS, CHART_SELECTOR, ERROR_SELECTOR)
        now = time.monotonic()
        if (state["charts"], state["drawn"]) != progress:
            progress, progress_at = (state["charts"], state["drawn"]), now
        stalled = (state["charts"] and state["drawn"] < state["charts"]
                   and now - progress_at > min(STALL_S, timeout / 3))
        if ((not state["charts"] and now > layout_deadline) or stalled) and reloads < RELOADS:
            driver.refresh()
            reloads += 1
            layout_deadline = now + min(LAYOUT_S, timeout / 3)
            progress, progress_at = None, now
            continue
        if state["login"] or "/login" in urlsplit(state["url"]).path:
            raise RedlineError("SCREENSHOT_LOGIN_PAGE",
                               f"{target} showed the login page instead of the dashboard")
        if state["errors"]:
            raise RedlineError("SCREENSHOT_CHART_ERROR",
                               f"{target} shows an error instead of a chart: "
                               f"{state['errors'][0][:500]}")
        if state["charts"] and state["drawn"] == state["charts"]:
            break
        time.sleep(0.1)
    else:
        raise RedlineError(
            "SCREENSHOT_TIMEOUT",
            f"{target}: {state.get('drawn', 0)} of {state.get('charts', 0)} charts drew "
            f"within {timeout:.0f}s ({reloads} reloads); the page said: "
            f"{' '.join(str(state.get('text', '')).split())[:300]!r}")
    return PageState(url=state["url"], charts=state["charts"], drawn=state["drawn"],
                     titles=state["titles"], errors=state["errors"], empty=state["empty"],
                     seconds=time.monotonic() - began)


def _save(driver, out: Path) -> None:
    """The whole page as PNG or PDF (by ``out``'s suffix)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    width = driver.get_window_size()["width"]
    if out.suffix.lower() == ".pdf":
        import base64

        # One page as tall as the dashboard (CSS pixels at 96 per inch).
        pdf = driver.execute_cdp_cmd("Page.printToPDF", {
            "printBackground": True, "paperWidth": width / 96, "paperHeight": height / 96 + 0.5,
            "marginTop": 0, "marginBottom": 0, "marginLeft": 0, "marginRight": 0})
        out.write_bytes(base64.b64decode(pdf["data"]))
        return
    driver.set_window_size(width, max(int(height) + 40, 800))
    time.sleep(1.0)  # the charts redraw for the new size
    driver.save_screenshot(str(out))


def capture_many(cfg: Config, pages: Mapping[str, Path], timeout: float = 300,
                 credentials: tuple[str, str] | None = None) -> dict[str, PageState]:
    """``capture`` for several dashboards (URL -> output file) in one browser session."""
    for out in pages.values():
        if out.suffix.lower() not in (".png", ".pdf"):
            raise RedlineError("SCREENSHOT_FORMAT", f"{out}: the report is a .png or a .pdf")
    profile = Path(tempfile.mkdtemp(prefix="redline-chromium-"))
    driver = browser(profile)
    states = {}
    try:
        driver.set_page_load_timeout(timeout)
        login(driver, cfg, timeout, credentials)
        for url, out in pages.items():
            driver.set_window_size(*_WINDOW)
            try:
                states[url] = open_dashboard(driver, url, timeout)
            except RedlineError as exc:
                if exc.code == "SCREENSHOT_LOGIN_PAGE":
                    raise
                out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(out.with_suffix(".png")))
                raise RedlineError(exc.code, f"{exc.message} (screenshot: "
                                             f"{out.with_suffix('.png')})") from None
            # Let the chart animations finish so the picture shows final bars and lines.
            time.sleep(1.5)
            _save(driver, out)
        return states
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def capture(cfg: Config, url: str, out: Path, timeout: float = 300,
            credentials: tuple[str, str] | None = None) -> PageState:
    """Log in, open ``url`` standalone, wait for every chart to draw, save a PNG (or a PDF
    when ``out`` ends in .pdf) at ``out``; return what the page showed.

    Raises ``RedlineError`` on a login page, an error alert, or charts that do not draw
    within ``timeout`` seconds (a PNG of what the page showed is still saved next to
    ``out``).
    """
    return capture_many(cfg, {url: out}, timeout, credentials)[url]


def screenshot(cfg: Config, url: str, out: Path, timeout: float = 300) -> Path:
    """Save a PNG (or PDF) of the dashboard at ``url`` once its charts drew; return ``out``."""
    capture(cfg, url, out, timeout)
    return out


def page(url: str, out: Path, timeout: float = 60) -> str:
    """Open ``url`` (a static page, e.g. the quality gate's Data Docs) in headless
    chromium, save a screenshot to ``out`` and return the page's visible text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    profile = Path(tempfile.mkdtemp(prefix="redline-chromium-"))
    driver = browser(profile)
    try:
        driver.set_window_size(1400, 1000)
        driver.get(url)
        WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.TAG_NAME, "body")))
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        return driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
