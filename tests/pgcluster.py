"""A throwaway PostgreSQL cluster for the tests (and for ``.ci/run``), from the server binaries.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(``runuser``). It listens on 127.0.0.1 only, on a free port, with password authentication, so
the tests can also show what a bad password looks like. ``python tests/pgcluster.py start DIR``
prints ``export GLMEVAL_TEST_PG=...`` for a shell; ``stop DIR`` ends it.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 60
USER = "glmeval"


def server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    folder: Path
    port: int
    password: str
    bindir: Path
    owner: str | None

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{USER}"

    def stop(self) -> None:
        _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _run(cluster: Cluster, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    if cluster.owner:
        argv = ["runuser", "-u", cluster.owner, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=check)


def start(folder: Path | None = None) -> Cluster:
    """Make and start a cluster with a ``glmeval`` superuser and database; raises RuntimeError
    saying why when it cannot."""
    bindir = server_binaries()
    if bindir is None:
        raise RuntimeError("GLMEVAL_TEST_PG is not set and no PostgreSQL server binaries (initdb, pg_ctl) were found")
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres").pw_name
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user to own a test cluster") from None
    base = Path(folder) if folder else Path(os.environ.get("TMPDIR", "/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    root = Path(subprocess.check_output(["mktemp", "-d", str(base / "glmeval-pg-XXXXXX")], text=True).strip())
    cluster = Cluster(root, free_port(), secrets.token_hex(12), bindir, owner)
    pwfile = root / "pw"
    pwfile.write_text(cluster.password + "\n", encoding="utf-8")
    if owner:
        info = pwd.getpwnam(owner)
        for path in (root, pwfile):
            os.chown(path, info.pw_uid, info.pw_gid)
    try:
        _run(cluster, [
            str(bindir / "initdb"), "-D", str(root / "data"), "-U", USER, "--pwfile", str(pwfile),
            "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
        ])
        options = f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c unix_socket_directories='{root}' -c fsync=off"
        _run(cluster, [
            str(bindir / "pg_ctl"), "-D", str(root / "data"), "-o", options, "-l", str(root / "log"),
            "-w", "-t", str(START_TIMEOUT_S), "start",
        ])
        _createdb(cluster)
    except (subprocess.SubprocessError, OSError) as exc:
        log = (root / "log").read_text(errors="replace")[-800:] if (root / "log").exists() else ""
        detail = getattr(exc, "stderr", "") or str(exc)
        cluster.stop()
        raise RuntimeError(f"could not start a PostgreSQL test cluster: {detail.strip()} {log.strip()}") from None
    return cluster


def _createdb(cluster: Cluster) -> None:
    """The cluster's own ``glmeval`` database (initdb makes only postgres and the templates)."""
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(cluster.url.rsplit("/", 1)[0] + "/postgres", autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"CREATE DATABASE {USER}")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# -- pytest fixtures (test modules import them) ---------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A URL of a PostgreSQL user that may create databases: ``GLMEVAL_TEST_PG`` (``.ci/run``
    sets it), or a throwaway cluster started here; skips, saying why, when neither can be had."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]'): the PostgreSQL tests need it")
    given = os.environ.get("GLMEVAL_TEST_PG")
    if given:
        yield given
        return
    try:
        cluster = start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield cluster.url
    finally:
        cluster.stop()


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server for one test, dropped after it."""
    import psycopg

    name = "glmeval_t_" + secrets.token_hex(5)
    try:
        with psycopg.connect(pg_server, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        pytest.skip(f"cannot create a test database on GLMEVAL_TEST_PG ({str(exc).splitlines()[0]}); it needs CREATEDB")
    try:
        yield with_database(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A history location on each engine: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "results.db"
    return str(request.getfixturevalue("pg_url"))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: pgcluster.py start|stop DIR", file=sys.stderr)
        return 2
    folder = Path(argv[1]).resolve()
    if argv[0] == "start":
        try:
            cluster = start(folder)
        except RuntimeError as exc:
            print(f"echo {shlex.quote(f'PostgreSQL tests will skip: {exc}'[:300])} >&2", flush=True)
            return 0
        print(f"export GLMEVAL_TEST_PG='{cluster.url}'")
        print(f"export GLMEVAL_TEST_PG_DIR='{cluster.folder}'")
        return 0
    bindir = server_binaries()
    for data in folder.glob("glmeval-pg-*/data"):
        owner = data.stat().st_uid
        argv2 = [str(bindir / "pg_ctl") if bindir else "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"]
        if os.geteuid() == 0 and owner != 0:
            argv2 = ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--", *argv2]
        subprocess.run(argv2, capture_output=True, timeout=START_TIMEOUT_S, check=False)
        shutil.rmtree(data.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
