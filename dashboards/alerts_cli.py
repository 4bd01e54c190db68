"""`redline alerts`: the command around ``redline.dashboards.alerts``, for redline/cli.py.

Kept apart from ``alerts`` so that building the CLI's parser imports nothing heavy:
``alerts`` pulls in the catalog and with it PySpark (about a second).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from redline.config import Config


def add_alerts_parser(sub) -> None:
    """Add ``redline alerts`` to the CLI's sub-command parsers ``sub``."""
    s = sub.add_parser("alerts", help="post each new out-of-control episode "
                                      "(gold.spc_violations) to the configured webhook, once")
    s.add_argument("--since", metavar="WHEN",
                   help="only new episodes ending at or after WHEN (ISO date or time, UTC "
                        "unless it says; or 24h, 7d before now; or 'all'); older new ones "
                        "are recorded as skipped, never posted. Default: every new "
                        "episode, except on the first run: those ending within "
                        "alerts.first_run_hours (24) of the newest one")
    s.add_argument("--dry-run", action="store_true",
                   help="list what would be posted; post and record nothing")
    s.add_argument("--json", action="store_true",
                   help="print the summary as JSON (progress goes to stderr)")
    s.set_defaults(fn=cmd_alerts)


def _session(cfg: Config) -> SparkSession:
    from redline.spark import build_session

    print(f"starting Spark ({cfg.spark.conf_file}) ...", file=sys.stderr, flush=True)
    return build_session(cfg, app_name="redline-alerts")


def cmd_alerts(cfg: Config, args) -> int:
    """``redline alerts [--since WHEN] [--dry-run] [--json]``: exit 0 when every new
    episode was posted (or, with --dry-run, listed); a RedlineError otherwise."""
    from redline.dashboards import alerts

    out = sys.stderr if args.json else sys.stdout
    # A missing webhook or a bad --since fails before Spark starts (seconds).
    if not args.dry_run:
        alerts.webhook_url(cfg)
    alerts.parse_since(args.since)
    summary = alerts.post_new(_session(cfg), cfg, since=args.since, dry_run=args.dry_run,
                              progress=lambda line: print(line, file=out, flush=True))
    print(json.dumps(summary, indent=2) if args.json else alerts.render(summary))
    return 0
