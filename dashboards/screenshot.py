"""Screenshots of deployed dashboards with Debian's chromium + chromium-driver.

The browser logs in through ``/login/`` with the generated admin credentials, opens the
dashboard with ``?standalone=1`` and waits until every chart has drawn (a canvas, svg or table
in each chart container) before it saves the PNG. A login page, an error alert or a chart
that never draws is an error, never a screenshot of the wrong thing.
"""

from __future__ import annotations

import shutil
import tempfile
import time
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

CHART_SELECTOR = ".dashboard-component-chart-holder"
ERROR_SELECTOR = (f"{CHART_SELECTOR} [role='alert'], {CHART_SELECTOR} .ant-alert-error, "
                  "[data-test='error-message'], [data-test='alert']")

#: Reads the state of a dashboard page in one round trip: its charts, which drew, errors.
_STATE_JS = """
const holders = [...document.querySelectorAll(arguments[0])];
return {
  login: !!document.querySelector("[data-test='login-button'], input#password"),
  url: location.href,
  charts: holders.length,
  drawn: holders.filter(h => !h.querySelector(".loading, [role='alert'], .ant-alert")
      && (h.querySelector("canvas, table") || [...h.querySelectorAll("svg")]
          .some(s => !s.closest(".anticon, [role='img'], button")))).length,
  titles: [...document.querySelectorAll("[data-test='editable-title-input'], " +
      ".header-title, [data-test='slice-header'] .header-title")]
      .map(e => (e.value || e.innerText || "").trim()).filter(Boolean),
  errors: [...document.querySelectorAll(arguments[1])]
      .map(e => e.innerText.trim()).filter(Boolean),
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


def _driver(profile: Path):
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
    return webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)


def standalone(url: str) -> str:
    """``url`` with ``standalone=1`` in its query (no Superset navigation around it)."""
    parts = urlsplit(url)
    query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("standalone="))
    return urlunsplit(parts._replace(query="&".join(filter(None, [query, "standalone=1"]))))


def login(driver, cfg: Config, timeout: float) -> None:
    """Log in through Superset's /login/ form with the generated admin credentials."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    user, password = admin_credentials(cfg)
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


def capture(cfg: Config, url: str, out: Path, timeout: float = 300) -> PageState:
    """Log in, open ``url`` standalone, wait for every chart to draw, save a PNG at ``out``.

    Returns what the page showed; raises ``RedlineError`` on a login page, an error
    alert, or charts that do not draw within ``timeout`` seconds.
    """
    profile = Path(tempfile.mkdtemp(prefix="redline-chromium-"))
    driver = _driver(profile)
    try:
        driver.set_page_load_timeout(timeout)
        login(driver, cfg, timeout)
        target = standalone(url)
        driver.get(target)
        deadline = time.monotonic() + timeout
        state: dict = {}
        while time.monotonic() < deadline:
            state = driver.execute_script(_STATE_JS, CHART_SELECTOR, ERROR_SELECTOR)
            if state["login"] or "/login" in urlsplit(state["url"]).path:
                raise RedlineError(
                    "SCREENSHOT_LOGIN_PAGE",
                    f"{target} showed the login page instead of the dashboard")
            if state["errors"]:
                break
            if state["charts"] and state["drawn"] == state["charts"]:
                break
            time.sleep(1.0)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Let the chart animations finish so the picture shows final bars and lines.
        time.sleep(1.5 if not state.get("errors") else 0)
        driver.save_screenshot(str(out))
        if state.get("errors"):
            raise RedlineError(
                "SCREENSHOT_CHART_ERROR",
                f"{target} shows an error instead of a chart: {state['errors'][0][:500]} "
                f"(screenshot: {out})")
        if not state.get("charts") or state["drawn"] < state["charts"]:
            raise RedlineError(
                "SCREENSHOT_TIMEOUT",
                f"{target}: {state.get('drawn', 0)} of {state.get('charts', 0)} charts drew "
                f"within {timeout:.0f}s (screenshot: {out})")
        return PageState(url=state["url"], charts=state["charts"], drawn=state["drawn"],
                         titles=state["titles"], errors=state["errors"])
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(cfg: Config, url: str, out: Path, timeout: float = 300) -> Path:
    """Save a PNG of the dashboard at ``url`` once its charts have drawn; return ``out``."""
    capture(cfg, url, out, timeout)
    return out


def page(url: str, out: Path, timeout: float = 60) -> str:
    """Open ``url`` (a static page, e.g. the quality gate's Data Docs) in headless
    chromium, save a screenshot to ``out`` and return the page's visible text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    profile = Path(tempfile.mkdtemp(prefix="redline-chromium-"))
    driver = _driver(profile)
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
