"""Out-of-control alerts: each new Nelson-rule episode of gold.spc_violations is posted to a
chat webhook (Slack or Teams incoming-webhook JSON) once, with a link to the SPC dashboard
filtered to its characteristic.

Episode identity. An episode is the series (plant, line, station, characteristic), the
chart, the rule and its first point, ``start_seq``: the key of gold.spc_violations. As a
series grows, a rule hit at a new point either extends the episode that ends within the
rule's window (its ``end_seq`` and ``points`` grow, its start stays) or opens a new one
with a later ``start_seq``; two earlier episodes never merge, since nothing new lands
between them. So an episode that grew after it was posted is the same episode and is not
posted again, and a new ``start_seq`` is a new episode. Two cases renumber the points of a
series and can re-post an episode under a new ``start_seq``: a late measurement (it shifts
every later point by one, ``jobs/spc_tail.py``) and a changed baseline (new limits, new
episodes). A repeated message is the lesser harm than a missed one.

Once. ``ops.spc_alerts`` holds every episode dealt with: ``POSTED`` (with the HTTP status
and the text) or ``SKIPPED`` (older than the run's ``since``). An episode is recorded
right after its POST succeeds, one Delta commit per message: a webhook that fails
mid-way stops the run with an error, the messages before it stay recorded and the rest
are posted by the next run. A crash between a POST and its record posts that one message
again (at least once, never silently lost). Runs are not meant to overlap: run alerts
from one place (after the jobs).

Since. Without ``since`` every episode not in ``ops.spc_alerts`` is posted, however old:
an alert held back by a webhook outage is still sent. The first run (``ops.spc_alerts``
empty) on a lake with a long history posts only the episodes ending within
``alerts.first_run_hours`` (24) of the newest episode's end, measured on the data's clock
(a replayed history works the same); the older ones are recorded as skipped, never posted.

The webhook URL carries a token: it is never logged, never part of an error (errors name
the scheme and host only), never a command-line argument or a redline.toml value (see
``webhook_url``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from redline import catalog, lake, secrets
from redline.config import Config
from redline.dashboards.links import spc_dashboard_url
from redline.errors import RedlineError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

WEBHOOK_SECRET = "alerts_webhook_url"
"""File under ``<home>/secrets`` holding the webhook URL when no variable is configured."""

POSTED = "POSTED"
SKIPPED = "SKIPPED"
ALL = "all"
"""``since`` value: no cutoff, every new episode is posted."""

IDENTITY: tuple[str, ...] = catalog.SPC_VIOLATIONS.key
"""Columns identifying an episode, the key of gold.spc_violations (see the module
docstring): plant, line, station, characteristic, chart, rule, start_seq."""

CHART_NAMES = {"I": "individuals chart", "XBAR": "X-bar chart"}
"""Words for gold.spc_violations.chart values ('I', 'XBAR'; see jobs/spc.py)."""


@dataclass(frozen=True)
class Episode:
    """One row of gold.spc_violations, without its event ids."""

    plant: str
    line: str
    station: str
    characteristic: str
    chart: str
    rule: int
    start_seq: int
    rule_name: str
    end_seq: int
    start_time: datetime
    end_time: datetime
    points: int

    @property
    def identity(self) -> tuple:
        return tuple(getattr(self, c) for c in IDENTITY)

    @property
    def series(self) -> str:
        return f"{self.characteristic} at {self.plant}/{self.line}/{self.station}"


_EPISODE_COLUMNS = tuple(f.name for f in dataclasses.fields(Episode))


def _utc(ts: datetime) -> datetime:
    """``ts`` as an aware UTC time. PySpark hands timestamps back naive, in the local
    time of this process; ``astimezone`` reads a naive time as local time too."""
    return ts.astimezone(UTC)


# -- the message: pure ------------------------------------------------------------------
def _slack_escape(text: str) -> str:
    """Slack reads ``<...>`` as a link or mention and ``&`` as an entity: escape the three
    characters its message format reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _span(start: datetime, end: datetime) -> str:
    start, end = _utc(start), _utc(end)
    first = f"{start:%Y-%m-%d %H:%M:%S}"
    if end == start:
        return f"{first} UTC"
    if end.date() == start.date():
        return f"{first} to {end:%H:%M:%S} UTC"
    return f"{first} to {end:%Y-%m-%d %H:%M:%S} UTC"


LINK_LABEL = "Open the SPC dashboard"


def _link(link: str, link_format: str) -> str:
    """``link`` in the text: the long rison URL behind a label where the chat has a
    syntax for it (Slack's ``<url|label>``, markdown's ``[label](url)``)."""
    if link_format == "slack":
        return f"<{link}|{LINK_LABEL}>"
    if link_format == "markdown":
        return f"[{LINK_LABEL}]({link})"
    return f"SPC dashboard: {link}"


def describe(episode: Episode) -> str:
    """What went out of control, where, by which rule, over which points and when."""
    e = episode
    unit = "subgroup" if e.chart == "XBAR" else "point"
    count = f"{e.points} {unit}{'' if e.points == 1 else 's'}"
    seqs = f"#{e.start_seq}" if e.start_seq == e.end_seq else f"#{e.start_seq}-#{e.end_seq}"
    chart = CHART_NAMES.get(e.chart, f"{e.chart} chart")
    return (f"SPC out of control: {e.series}, {chart}, Nelson rule {e.rule} "
            f"({e.rule_name}): {count} ({seqs}), {_span(e.start_time, e.end_time)}.")


def message_text(episode: Episode, link: str, link_format: str = "slack") -> str:
    """One readable paragraph (``describe``) and the link to the SPC dashboard filtered to
    the episode's characteristic, as ``link_format`` (``alerts.link_format``) says."""
    body = describe(episode)
    if link_format == "slack":
        body = _slack_escape(body)
    return f"{body} {_link(link, link_format)}"


def message(episode: Episode, link: str, link_format: str = "slack") -> dict:
    """The webhook payload of ``episode``: Slack and Teams incoming webhooks both take a
    JSON object with a ``text`` field."""
    return {"text": message_text(episode, link, link_format)}


# -- the webhook --------------------------------------------------------------------------
_NO_WEBHOOK = ("no webhook is configured for alerts: put its URL in {path} (mode 0600: "
               "`(umask 077; cat > {path})`, paste, Ctrl-D), or set alerts.webhook_url_env in "
               "redline.toml to the name of an environment variable that holds it")


def webhook_url(cfg: Config, env: Mapping[str, str] | None = None) -> str:
    """The webhook URL: from the environment variable ``alerts.webhook_url_env`` names,
    else from ``<home>/secrets/alerts_webhook_url``, which must be readable by its owner
    only (it holds a token). Raises a RedlineError saying how to configure one."""
    env = os.environ if env is None else env
    var = cfg.alerts.webhook_url_env
    if var:
        value = env.get(var, "").strip()
        source = f"environment variable {var}"
        if not value:
            raise RedlineError("ALERTS_NO_WEBHOOK",
                               f"alerts.webhook_url_env is {var}, but {var} is not set or "
                               f"empty: set it to the webhook URL")
    else:
        path = secrets.path_of(cfg.home, WEBHOOK_SECRET)
        source = str(path)
        if not path.is_file():
            raise RedlineError("ALERTS_NO_WEBHOOK", _NO_WEBHOOK.format(path=path))
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise RedlineError("ALERTS_WEBHOOK_INSECURE",
                               f"{path} holds a token but is readable by others (mode "
                               f"{mode:o}): `chmod 600 {path}`")
        value = path.read_text().strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The value is not echoed: it may be the token pasted alone.
        raise RedlineError("ALERTS_WEBHOOK_INVALID",
                           f"the webhook in {source} is not an http(s) URL")
    return value


def webhook_configured(cfg: Config, env: Mapping[str, str] | None = None) -> bool:
    """True when a webhook URL is configured (``webhook_url`` may still refuse it)."""
    env = os.environ if env is None else env
    if cfg.alerts.webhook_url_env:
        return bool(env.get(cfg.alerts.webhook_url_env, "").strip())
    return secrets.path_of(cfg.home, WEBHOOK_SECRET).is_file()


def redact(url: str) -> str:
    """``url`` without what may be secret: scheme and host (and port) only."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _scrub(text: str, url: str) -> str:
    """``text`` with every part of ``url`` that may carry its token replaced by '...'."""
    parts = urlsplit(url)
    secret = [url, parts.path, parts.query, parts.password or "", parts.username or "",
              *[s for s in parts.path.split("/") if len(s) >= 8]]
    for s in sorted((s for s in secret if len(s) > 1), key=len, reverse=True):
        text = text.replace(s, "...")
    return text


def post_message(url: str, payload: Mapping, timeout: float) -> int:
    """POST ``payload`` as JSON to ``url``; return the HTTP status (2xx). A webhook that
    answers otherwise, or not within ``timeout`` seconds, raises a RedlineError naming
    the status or the failure, and the webhook by scheme and host only."""
    import requests

    where = redact(url)
    try:
        # No redirects: requests would follow a 301/302 as a GET and drop the message.
        resp = requests.post(url, json=dict(payload), timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise RedlineError("ALERTS_WEBHOOK_FAILED",
                           f"webhook {where} did not answer within {timeout:g} s "
                           f"(alerts.timeout_seconds)") from None
    except requests.RequestException as exc:
        found = re.search(r"\[Errno -?\d+\][^'\")]*", str(exc))
        reason = _scrub(found.group(0).strip() if found else type(exc).__name__, url)
        raise RedlineError("ALERTS_WEBHOOK_FAILED",
                           f"webhook {where} could not be reached: {reason}") from None
    if not 200 <= resp.status_code < 300:
        body = _scrub(" ".join(resp.text.split())[:200], url)
        raise RedlineError("ALERTS_WEBHOOK_FAILED",
                           f"webhook {where} answered HTTP {resp.status_code}"
                           + (f": {body}" if body else ""))
    return resp.status_code


# -- which episodes are new ------------------------------------------------------------------
def parse_since(text: str | datetime | None, now: datetime | None = None
                ) -> datetime | str | None:
    """A ``since`` as given (``--since``): None (the default policy), ``'all'`` (no
    cutoff), or the cutoff as an aware UTC time. Text is an ISO date or time (UTC unless
    it names an offset) or ``<n>h`` / ``<n>d`` before ``now``."""
    if text is None or isinstance(text, datetime):
        return None if text is None else (text if text.tzinfo else text.replace(tzinfo=UTC))
    value = text.strip()
    if value.lower() == ALL:
        return ALL
    relative = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([hd])", value.lower())
    if relative:
        amount = float(relative.group(1))
        delta = timedelta(hours=amount) if relative.group(2) == "h" else timedelta(days=amount)
        return (now or datetime.now(UTC)).astimezone(UTC) - delta
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise RedlineError("ALERTS_SINCE",
                           f"--since {text!r} is not an ISO date or time (2024-05-01, "
                           f"2024-05-01T06:00, 2024-05-01T06:00+02:00), a span before now "
                           f"(24h, 7d) or 'all'") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def resolve_since(since: datetime | str | None, first_run: bool,
                  newest_end: datetime | None, first_run_hours: float) -> datetime | None:
    """The cutoff of a run: new episodes ending before it are skipped (None: none are).

    ``since`` from ``parse_since``. By default there is no cutoff, except on the first
    run: then it is ``first_run_hours`` before the newest episode's end."""
    if since == ALL:
        return None
    if isinstance(since, datetime):
        return since
    if first_run and newest_end is not None:
        return _utc(newest_end) - timedelta(hours=first_run_hours)
    return None


def unrecorded(violations: DataFrame, recorded: DataFrame | None) -> DataFrame:
    """The episodes of ``violations`` (gold.spc_violations) whose identity is not in
    ``recorded`` (ops.spc_alerts; None: nothing recorded yet), as Episode columns."""
    episodes = violations.select(*_EPISODE_COLUMNS)
    if recorded is None:
        return episodes
    return episodes.join(recorded.select(*IDENTITY), list(IDENTITY), "left_anti")


def new_episodes(spark: SparkSession, lake_root: str) -> tuple[list[Episode], bool]:
    """(episodes not yet in ops.spc_alerts, oldest first; whether ops.spc_alerts is
    empty: a first run)."""
    if not catalog.exists(spark, lake_root, catalog.SPC_VIOLATIONS):
        return [], False
    recorded = None
    if catalog.exists(spark, lake_root, catalog.SPC_ALERTS):
        recorded = catalog.read(spark, lake_root, catalog.SPC_ALERTS)
    first_run = recorded is None or recorded.isEmpty()
    rows = (unrecorded(catalog.read(spark, lake_root, catalog.SPC_VIOLATIONS), recorded)
            .orderBy("start_time", *IDENTITY).collect())
    return [Episode(**{c: r[c] for c in _EPISODE_COLUMNS}) for r in rows], first_run


def _record(spark: SparkSession, lake_root: str, episodes: list[Episode], status: str,
            http_status: int | None = None, text: str | None = None) -> None:
    """Append ``episodes`` to ops.spc_alerts (one Delta commit)."""
    now = datetime.now(UTC)
    rows = [{**dataclasses.asdict(e), "start_time": _utc(e.start_time),
             "end_time": _utc(e.end_time), "status": status, "recorded_at": now,
             "http_status": http_status, "text": text} for e in episodes]
    lake.append(spark.createDataFrame(rows, catalog.SPC_ALERTS.schema()), lake_root,
                catalog.SPC_ALERTS)


def _as_dict(episode: Episode, text: str, link: str, http_status: int | None) -> dict:
    return {**dataclasses.asdict(episode), "start_time": _utc(episode.start_time).isoformat(),
            "end_time": _utc(episode.end_time).isoformat(), "summary": describe(episode),
            "text": text, "link": link, "http_status": http_status}


def post_new(spark: SparkSession, cfg: Config, progress: Callable[[str], None] = print,
             since: str | datetime | None = None, dry_run: bool = False,
             env: Mapping[str, str] | None = None) -> dict:
    """Post every new episode of gold.spc_violations to the webhook, oldest first, and
    record each in ops.spc_alerts right after its POST succeeded; record the new episodes
    ending before the cutoff (``since``, see ``parse_since``; by default the first-run
    rule of the module docstring) as skipped. ``dry_run``: post and record nothing (and
    need no webhook). Returns a summary: the cutoff, counts, and each episode posted (or
    that would be) with its text and link.

    A webhook that fails raises a RedlineError after the messages before it are recorded;
    the next run posts the rest.
    """
    url = None if dry_run else webhook_url(cfg, env)
    cutoff_given = parse_since(since)
    summary: dict = {"dry_run": dry_run, "since": None, "new": 0, "posted": 0, "skipped": 0,
                     "episodes": []}
    if not catalog.exists(spark, cfg.lake_root, catalog.SPC_VIOLATIONS):
        progress("gold.spc_violations has no data yet (`redline jobs run gold_spc` writes "
                 "it): nothing to post")
        return summary
    episodes, first_run = new_episodes(spark, cfg.lake_root)
    newest = max((e.end_time for e in episodes), key=_utc, default=None)
    cutoff = resolve_since(cutoff_given, first_run, newest, cfg.alerts.first_run_hours)
    to_post: list[Episode] = []
    to_skip: list[Episode] = []
    for e in episodes:
        (to_post if cutoff is None or _utc(e.end_time) >= cutoff else to_skip).append(e)
    summary.update(since=cutoff.isoformat() if cutoff else None, new=len(episodes),
                   skipped=len(to_skip))
    rule = (f"; {len(to_skip)} ending before {cutoff:%Y-%m-%d %H:%M:%S} UTC "
            f"{'would be' if dry_run else 'are'} recorded as skipped" if to_skip else "")
    progress(f"{len(episodes)} new episode(s) in gold.spc_violations, "
             f"{len(to_post)} to post{rule}" + (" (dry run)" if dry_run else ""))
    if to_skip and not dry_run:
        _record(spark, cfg.lake_root, to_skip, SKIPPED)
    base = cfg.alerts.dashboard_url or None
    for i, episode in enumerate(to_post, 1):
        link = spc_dashboard_url(cfg, episode.plant, episode.line, episode.station,
                                 episode.characteristic, base_url=base)
        payload = message(episode, link, cfg.alerts.link_format)
        status = None
        if not dry_run:
            try:
                status = post_message(url, payload, cfg.alerts.timeout_seconds)
            except RedlineError as exc:
                raise RedlineError(
                    exc.code, f"{exc.message}. Posted {i - 1} of {len(to_post)} new "
                              f"episode(s) (recorded in ops.spc_alerts); the other "
                              f"{len(to_post) - i + 1} are posted by the next run") from None
            _record(spark, cfg.lake_root, [episode], POSTED, status, payload["text"])
            summary["posted"] += 1
        summary["episodes"].append(_as_dict(episode, payload["text"], link, status))
        verb = "would post" if dry_run else f"posted (HTTP {status})"
        progress(f"[{i}/{len(to_post)}] {verb}: {episode.series}, {episode.chart} rule "
                 f"{episode.rule} from #{episode.start_seq}")
    return summary


def render(summary: Mapping) -> str:
    """``post_new``'s summary for people: under a dry run each message that would be
    posted (without its long link), else the counts (the progress named each one)."""
    lines: list[str] = []
    if summary["dry_run"]:
        lines = [f"- {e['summary']}" for e in summary["episodes"]]
        head = f"dry run: {len(summary['episodes'])} episode(s) would be posted"
    else:
        head = f"posted {summary['posted']} new episode(s)"
    if summary["skipped"]:
        verb = "would be skipped" if summary["dry_run"] else "recorded as skipped"
        head += f"; {summary['skipped']} ending before {summary['since']} {verb}"
    return "\n".join([*lines, head])
