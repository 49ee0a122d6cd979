"""A throwaway PostgreSQL server for tests: `initdb` into a temp dir, `pg_ctl start` on loopback.

Reusable from any test folder::

    url, stop = start_postgres()          # asyncpg URL of a fresh database "cocreate"
    ...
    stop()

or keep the `PostgresServer` to stop/start it again (outage tests), and give each test an empty
database with `fresh_database` (or a new one with `create_database`).

PostgreSQL refuses to run as root: when we are root, the server runs as an unprivileged user
(`nobody`, else a `cocreate-pg` system user we create).
`PostgresUnavailable` means the binaries are missing (callers skip, or fail on CI).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

SUPERUSER = "postgres"
_FALLBACK_USER = "cocreate-pg"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """The folder holding `initdb`, `pg_ctl` and `postgres`."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
        candidates.append(Path(on_path).parent)
    patterns = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin")
    for pattern in patterns:
        found = glob.glob(pattern)
        candidates.extend(Path(p) for p in sorted(found, key=_version_key, reverse=True))
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")


def _version_key(path: str) -> tuple[int, ...]:
    digits = "".join(c if c.isdigit() else " " for c in path).split()
    return tuple(int(d) for d in digits)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("nobody", _FALLBACK_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _FALLBACK_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(_FALLBACK_USER)


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1:`port` (trust auth)."""

    bindir: Path
    root: Path
    port: int
    account: pwd.struct_passwd | None  # who runs the server; None = ourselves
    running: bool = field(default=False, init=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq/asyncpg DSN."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for the asyncpg driver."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        user: dict[str, object] = {}
        if self.account is not None:
            user = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **user,  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}\n{log}")

    def initdb(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        """Start (or restart after `stop`); fsync stays on, as in production."""
        options = f"-k {self.root} -h 127.0.0.1 -p {self.port} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip
        self.running = True

    def stop(self) -> None:
        """Stop the server, keeping its files (`start` brings it back)."""
        if self.running:
            self.running = False
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def launch() -> PostgresServer:
    """initdb + start a fresh cluster; stopped and removed at interpreter exit at the latest."""
    bindir = find_bindir()
    account = _unprivileged_user() if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="cocreate-pg-"))  # short: the socket path is limited
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    server = PostgresServer(bindir, root, free_port(), account)
    atexit.register(server.destroy)
    try:
        server.initdb()
        for attempt in range(3):  # the port may be taken between free_port() and start
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                server.port = free_port()
    except BaseException:
        server.destroy()
        raise
    return server


async def create_database(server: PostgresServer, name: str | None = None) -> str:
    """CREATE DATABASE (a fresh random name by default); returns its SQLAlchemy URL."""
    name = name or f"t_{uuid.uuid4().hex[:20]}"
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name)


async def fresh_database(server: PostgresServer, name: str = "cocreate_test") -> str:
    """The URL of database `name`, empty: created if missing, else its `public` schema recreated.

    Much cheaper than CREATE DATABASE per test (no file copy and checkpoint); sessions still
    connected to it (a test that did not close its storage) are terminated first.
    """
    conn = await asyncpg.connect(server.dsn())
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
            return server.url(name)
    finally:
        await conn.close()
    conn = await asyncpg.connect(server.dsn(name))
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    return server.url(name)


async def drop_database(server: PostgresServer, url: str) -> None:
    """DROP DATABASE ... WITH (FORCE), closing its remaining sessions."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def start_postgres(database: str = "cocreate") -> tuple[str, Callable[[], None]]:
    """Start a server holding an empty `database`; returns (asyncpg URL, stop-and-clean-up)."""
    server = launch()
    try:
        subprocess.run(
            [str(server.bindir / "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", SUPERUSER,
             "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{database}"'],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    except BaseException:
        server.destroy()
        raise
    return server.url(database), server.destroy
