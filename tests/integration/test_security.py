"""Probes of what a local attacker would try against a running redline (issue 19).

Each test names the hole it closes: anonymous access to a service, reading files through
SQL, secrets in logs or process lists, state readable by other users.
"""

from __future__ import annotations

# -- Kafka ---------------------------------------------------------------------------------

# -- MLflow --------------------------------------------------------------------------------

# -- Spark Thrift Server -------------------------------------------------------------------

# -- secrets, processes and the state folder ------------------------------------------------
