"""Fixtures of the end-to-end tests: a fresh database on the local PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432


@pytest.fixture
def postgres_db() -> Iterator[str]:
    """A fresh database on the local PostgreSQL (trust auth, user postgres), dropped afterwards.

    Skips when no PostgreSQL answers, unless STACKCAST_REQUIRE_POSTGRES=1 (CI) makes it fail.
    """
    try:
        import psycopg

        admin = psycopg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user="postgres",
            dbname="postgres",
            connect_timeout=3,
            autocommit=True,  # CREATE DATABASE cannot run in a transaction
        )
    except Exception as error:  # no driver or no server
        if os.environ.get("STACKCAST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required (STACKCAST_REQUIRE_POSTGRES=1) but: {error}")
        pytest.skip(f"no PostgreSQL reachable at {PG_HOST}:{PG_PORT}: {error}")
    name = f"stackcast_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
