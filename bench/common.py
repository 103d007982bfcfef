"""What the benchmark scripts share: creating their PostgreSQL database."""

from __future__ import annotations

import sys


def ensure_database(url: str, *, recreate: bool = False, script: str) -> None:
    """Create the benchmark database (from the ``postgres`` maintenance database) if it is missing.

    With ``recreate`` it is dropped first, which is refused unless its name contains "bench".
    """
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(f"{script} needs PostgreSQL: set DATABASE_URL=postgres://...")
    name = config["NAME"]
    if recreate and "bench" not in name:
        sys.exit(
            f"Refusing to drop {name!r}: without --reuse the database is recreated; use a name with 'bench'."
        )
    conn = psycopg.connect(
        dbname="postgres",
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            if recreate:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"Created database {name}.")
    finally:
        conn.close()
