"""Create or update Superset's read-only role and its quality-engineer user.

Run by ``dashboards/deploy.py`` with the Superset virtualenv's Python (it imports Superset,
so the core never imports it)::

    python viewer_role.py ROLE USER DATABASE DATASET_UUID...   < password on stdin

The role holds Gamma's permissions without any that write (save, edit, delete, import)
and without SQL Lab, plus ``datasource_access`` on each dataset the dashboards use (the
UUIDs given, those of the bundle): it opens dashboards and charts, applies filters, and
cannot change them or run SQL. No ``database_access`` and no ``schema_access``: with
either, Superset's database API lists every table of the lake (and its columns) to the
role, bronze and silver included; with per-dataset access it lists at most the tables
that share a dataset's name and catalog, i.e. what the role can chart (none today: Superset
takes the URI's database for the Hive catalog, the bundle's datasets have none, and
charts do not need the listing). The role's permissions are replaced on every run, so
access given by an older version (or to a dataset the dashboards no longer use) goes. The
password arrives on stdin, never on the command line; the user's password is reset to it
on every run so the credentials file stays the truth.
"""

from __future__ import annotations

import json
import sys
import uuid

WRITES = ("can_write", "can_add", "can_edit", "can_delete", "can_save", "can_overwrite",
          "muldelete", "can_import", "can_copy_dash", "can_post", "can_put",
          "can_set_embedded", "can_delete_embedded", "can_tag")
SQL_LAB_VIEWS = {"sql lab", "sqllab", "sql editor", "query", "savedquery", "tabstateview",
                 "tableschemaview", "sqllab_history"}
SQL_LAB_PERMISSIONS = {"can_execute_sql_query", "can_estimate_query_cost", "can_export_csv",
                       "can_get_results", "can_format_sql", "menu_access on sql lab"}


def main(role_name: str, user_name: str, database_name: str, password: str,
         dataset_uuids: list[str]) -> dict:
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db, security_manager
        from superset.connectors.sqla.models import SqlaTable
        from superset.models.core import Database

        gamma = security_manager.find_role("Gamma")
        if gamma is None:
            raise SystemExit("the Gamma role is missing: run `superset init` first")
        database = db.session.query(Database).filter_by(database_name=database_name).first()
        if database is None:
            raise SystemExit(f"database {database_name!r} is not in Superset: deploy the "
                             f"bundle first")
        keep = [pv for pv in gamma.permissions
                if not pv.permission.name.startswith((*WRITES, "can_sqllab"))
                and pv.view_menu.name.lower() not in SQL_LAB_VIEWS
                and pv.permission.name not in SQL_LAB_PERMISSIONS]
        wanted = {uuid.UUID(u) for u in dataset_uuids}
        datasets = (db.session.query(SqlaTable)
                    .filter(SqlaTable.database_id == database.id, SqlaTable.uuid.in_(wanted))
                    .all())
        missing = wanted - {d.uuid for d in datasets}
        if missing:
            raise SystemExit(f"datasets {sorted(map(str, missing))} of the bundle are not in "
                             f"database {database_name!r}: deploy the bundle first")
        # ``SqlaTable.perm`` is the name Superset's checks and list filters compare with.
        access = [security_manager.add_permission_view_menu("datasource_access", d.perm)
                  for d in datasets]
        role = security_manager.find_role(role_name) or security_manager.add_role(role_name)
        role.permissions = [*keep, *access]
        user = security_manager.find_user(username=user_name)
        if user is None:
            user = security_manager.add_user(user_name, "Quality", "Engineer",
                                             f"{user_name}@localhost", role, password=password)
            if not user:
                raise SystemExit(f"could not create user {user_name!r}")
        else:
            user.roles = [role]
            security_manager.reset_password(user.id, password)
        db.session.commit()
        return {"role": role_name, "user": user_name, "permissions": len(role.permissions),
                "datasets": sorted(d.table_name for d in datasets)}


if __name__ == "__main__":
    if len(sys.argv) < 5:
        raise SystemExit("usage: viewer_role.py ROLE USER DATABASE DATASET_UUID... "
                         "< password")
    print(json.dumps(main(*sys.argv[1:4], sys.stdin.readline().strip(), sys.argv[4:])))
