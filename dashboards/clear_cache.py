"""Empty Superset's chart-data and metadata caches.

Run by ``dashboards/refresh.py`` with the Superset virtualenv's Python and the server's
environment (it imports Superset, so the core never imports it); prints one JSON line:
``{"cleared": [...]}``.
"""

from __future__ import annotations

import json


def main() -> dict:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset.extensions import cache_manager

        caches = {"chart data": cache_manager.data_cache, "metadata": cache_manager.cache}
        failed = [name for name, cache in caches.items() if cache.clear() is False]
    if failed:
        raise SystemExit(f"Superset's {', '.join(failed)} cache refused to clear")
    return {"cleared": list(caches)}


if __name__ == "__main__":
    print(json.dumps(main()))
