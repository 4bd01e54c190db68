"""How a screenshot waits for a dashboard's charts: a page that lays out no chart, or a
chart whose query stops answering while the others drew, is loaded again, as a person
would; what never draws is a clear timeout. A stand-in browser (pure logic: the page
states it reports are scripted) and a clock that advances one second a look."""

import pytest

from redline.dashboards import screenshot
from redline.errors import RedlineError


class Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += 1.0


class Page:
    """Reports ``states`` in turn (the last one for ever); a refresh starts ``after``."""

    def __init__(self, states, after=None):
        self.states, self.after, self.refreshes = list(states), after, 0

    def get(self, url):
        self.url = url

    def refresh(self):
        self.refreshes += 1
        if self.after is not None:
            self.states = list(self.after)

    def execute_script(self, *_):
        charts, drawn = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"url": self.url, "charts": charts, "drawn": drawn, "titles": [],
                "errors": [], "empty": [], "login": False, "text": "Waiting on redline_lake"}


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(screenshot.time, "monotonic", c.monotonic)
    monkeypatch.setattr(screenshot.time, "sleep", c.sleep)
    return c


def test_a_chart_stuck_while_the_others_drew_is_loaded_again(clock):
    page = Page([(6, 5)], after=[(6, 6)])
    state = screenshot.open_dashboard(page, "http://h/d/", timeout=300)
    assert page.refreshes == 1 and state.drawn == state.charts == 6
    # Reloaded once the chart had not moved for STALL_S (90 s), not before.
    assert screenshot.STALL_S < clock.now < screenshot.STALL_S + 5


def test_charts_that_keep_drawing_are_not_reloaded(clock):
    page = Page([(6, k // 30) for k in range(6 * 30 + 1)])  # one more chart every 30 s
    state = screenshot.open_dashboard(page, "http://h/d/", timeout=300)
    assert page.refreshes == 0 and state.drawn == 6


def test_a_chart_that_never_draws_is_a_clear_timeout(clock):
    page = Page([(6, 5)], after=[(6, 5)])
    with pytest.raises(RedlineError, match=r"5 of 6 charts drew within 300s \(2 reloads\)"):
        screenshot.open_dashboard(page, "http://h/d/", timeout=300)
    assert page.refreshes == screenshot.RELOADS
