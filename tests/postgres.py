"""A real, throwaway Postgres for the tests (no fakes: the store's SQL must run on the engine).

``MEDCHAT_TEST_POSTGRES_URL`` names a server to use (``.ci/run`` starts one and sets it).
Without it, the first test that needs Postgres starts a private cluster from Debian's
``postgresql`` binaries: ``initdb`` into a temporary directory, listening on a Unix socket only (no
TCP port, nothing reachable from outside), stopped and deleted when the test session ends. Each
test gets its own schema (``search_path`` in the URL), so tests never see each other's rows.

When no server can be had, the Postgres tests are skipped with the reason, unless
``MEDCHAT_TEST_REQUIRE_POSTGRES=1`` (CI), where they fail: a suite that silently skipped its
Postgres half would claim what it did not test.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

ENV_URL = "MEDCHAT_TEST_POSTGRES_URL"
ENV_REQUIRE = "MEDCHAT_TEST_REQUIRE_POSTGRES"


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """A private cluster: ``url`` connects over its Unix socket as superuser ``medchat``."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError("no initdb found (apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="medchat-pg-"))
        self.data = self.root / "data"
        self.socket = self.root
        # initdb refuses to run as root: run the server as the postgres system user then.
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = "postgres"
            pwd.getpwnam(user)  # KeyError when the package did not create it
            shutil.chown(self.root, user)
            self._as = ["runuser", "-u", user, "--"]
        os.chmod(self.root, 0o755)
        self._run([str(bindir / "initdb"), "-D", str(self.data), "-U", "medchat", "--auth=trust",
                   "-E", "UTF8", "--locale=C.UTF-8"])
        # fsync off: a throwaway cluster need not survive a power cut, and it makes tests faster.
        options = f"-k {self.socket} -c listen_addresses='' -c fsync=off -c max_connections=200"
        self._pg_ctl = str(bindir / "pg_ctl")
        self._run([self._pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                   "-w", "start"])
        self.url = f"postgresql://medchat@/postgres?host={quote(str(self.socket), safe='')}"

    def _run(self, cmd: list[str]) -> None:
        subprocess.run([*self._as, *cmd], check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        try:
            self._run([self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def server_url(request: pytest.FixtureRequest) -> str:
    """The base URL of the session's server, starting a private cluster once if needed."""
    url = os.environ.get(ENV_URL)
    if url:
        return url
    cache = request.config.stash.get(_CLUSTER, None)
    if cache is None:
        try:
            cache = Cluster()
        except (RuntimeError, KeyError, OSError, subprocess.SubprocessError) as exc:
            cache = exc
        request.config.stash[_CLUSTER] = cache
        if isinstance(cache, Cluster):
            request.config.add_cleanup(cache.stop)
    if isinstance(cache, BaseException):
        message = f"no Postgres for the tests: {cache}"
        if os.environ.get(ENV_REQUIRE) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return cache.url


_CLUSTER = pytest.StashKey[object]()


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


def fresh_schema_url(request: pytest.FixtureRequest) -> str:
    """A URL whose tables land in a new, empty schema (dropped after the test)."""
    import psycopg

    base = server_url(request)
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    request.addfinalizer(drop)
    return with_search_path(base, schema)
