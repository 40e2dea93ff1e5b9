#!/usr/bin/env python3
"""A throwaway PostgreSQL cluster on 127.0.0.1, for tests and local runs of the postgres target.

Usage::

    eval "$(python scripts/pg_cluster.py start [--dir DIR])"   # prints `export TIKTOK_PG_...` lines
    dbt build --target postgres
    python scripts/pg_cluster.py stop "$TIKTOK_PG_CLUSTER_DIR"

or, from Python (the pytest fixture in tests/python/pg_fixtures.py does this)::

    with cluster() as pg:
        subprocess.run([...], env={**os.environ, **pg.env})

The server binaries (initdb, pg_ctl, postgres) are taken from ``$PG_BINDIR``, ``pg_config
--bindir``, the newest ``/usr/lib/postgresql/*/bin`` or ``PATH``, in that order. The cluster lives
in one directory (a new one under the system temp directory unless ``--dir`` names one): the data
directory ``data/``, the Unix socket, ``server.log`` and ``cluster.json`` (what ``stop`` needs).
It trusts every local connection (except roles made with ``Cluster.create_password_role``, which
must give their password), listens on 127.0.0.1 only, on a free port, and runs without
fsync, synchronous commit or full-page writes: fast, and lost on a crash, which is the point.
Its superuser is ``tiktok`` (no password) and it holds an empty database ``tiktok_outbox``.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user when
it exists (else ``nobody``) and the cluster directory is handed to that user. The context manager
always stops the server and removes the directory, also when the Python process dies without
cleaning up (a small watchdog process does it then). Only the standard library is used.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import glob
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

SUPERUSER = "tiktok"
DATABASE = "tiktok_outbox"
HOST = "127.0.0.1"
METADATA = "cluster.json"
# Durability off: a test cluster that loses its data on a crash loses nothing of value.
SERVER_OPTIONS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  "-c max_connections=50 -c shared_buffers=64MB")
START_ATTEMPTS = 4  # a free port can be taken between choosing it and the server binding it


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message says why."""


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None when there is none."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name))

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    candidates += [Path("/usr/local/pgsql/bin")]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for path in candidates:
        if all(os.access(path / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return path
    return None


def server_user() -> str | None:
    """The user to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ClusterError("running as root and neither a 'postgres' nor a 'nobody' user exists to run the server")


def server_locale() -> str | None:
    """A UTF-8 locale for the cluster, so lower() and upper() handle non-ASCII letters the way
    other warehouses do (under the C locale PostgreSQL lowercases ASCII only). None: initdb's default."""
    try:
        available = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = {name.strip().lower().replace("-", ""): name.strip() for name in available.splitlines()}
    for wanted in ("c.utf8", "en_us.utf8"):
        if wanted in names:
            return names[wanted]
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    """A running cluster: where it is and how to reach it."""

    base_dir: Path
    bindir: Path
    port: int
    run_as: str | None
    host: str = HOST
    user: str = SUPERUSER
    password: str = ""
    dbname: str = DATABASE

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    @property
    def env(self) -> dict[str, str]:
        """The variables the `postgres` target of profiles.yml reads."""
        return {
            "TIKTOK_PG_HOST": self.host,
            "TIKTOK_PG_PORT": str(self.port),
            "TIKTOK_PG_USER": self.user,
            "TIKTOK_PG_PASSWORD": self.password,
            "TIKTOK_PG_DATABASE": self.dbname,
            "TIKTOK_PG_CLUSTER_DIR": str(self.base_dir),
        }

    def dsn(self, dbname: str | None = None) -> str:
        """A libpq connection string (psycopg2.connect(cluster.dsn()))."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname or self.dbname}"

    def create_database(self, name: str) -> str:
        """Create another empty database (e.g. one per test) and return its name."""
        _client(self, "createdb", name)
        return name

    def connect(self, dbname: str | None = None):  # noqa: ANN201 - psycopg2 is optional here
        """A psycopg2 connection in autocommit mode (psycopg2 comes with dbt-postgres); close it."""
        import psycopg2

        conn = psycopg2.connect(self.dsn(dbname))
        conn.autocommit = True
        return conn

    def query(self, sql: str, params: Sequence[object] = (), dbname: str | None = None) -> list[tuple]:
        """Run one statement on a connection of its own; the rows, if it returns any."""
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, tuple(params))
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def create_password_role(self, name: str, password: str) -> str:
        """A superuser role that logs in over TCP with `password` only (scram-sha-256), for tests
        of password handling; every other role keeps trust authentication. Returns the name."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ClusterError(f"not a plain role name: {name!r}")
        hba = self.data_dir / "pg_hba.conf"
        rule = f"host all {name} {self.host}/32 scram-sha-256\n"
        rules = hba.read_text()
        if rule not in rules:
            hba.write_text(rule + rules)  # the first matching line wins
        exists = self.query("select 1 from pg_roles where rolname = %s", [name], dbname="postgres")
        verb = "alter" if exists else "create"
        self.query(f"{verb} role {name} login superuser password %s", [password], dbname="postgres")
        self.query("select pg_reload_conf()", dbname="postgres")
        return name

    def clone_database(self, source: str, target: str) -> str:
        """A copy of database source (nobody may be connected to it) named target."""
        self.query(f'drop database if exists "{target}"', dbname="postgres")
        self.query(f'create database "{target}" template "{source}"', dbname="postgres")
        return target

    def server_pid(self) -> int | None:
        return _postmaster_pid(self.data_dir)

    def stop(self, remove: bool = True) -> None:
        stop_cluster(self.base_dir, remove=remove)

    def save(self) -> None:
        meta = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        (self.base_dir / METADATA).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, base_dir: Path | str) -> Cluster:
        path = Path(base_dir) / METADATA
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ClusterError(f"{path} is missing or unreadable: not a cluster made by this script") from exc
        return cls(**{**meta, "base_dir": Path(meta["base_dir"]), "bindir": Path(meta["bindir"])})


def _run(cmd: Sequence[str], run_as: str | None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a server tool, as run_as when given (we are root then)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
    kwargs: dict = {}
    if run_as:
        account = pwd.getpwnam(run_as)
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env["HOME"] = account.pw_dir
    return subprocess.run(
        list(cmd), env=env, cwd="/", capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def _client(cluster: Cluster, tool: str, *args: str) -> None:
    cmd = [str(cluster.bindir / tool), "-h", cluster.host, "-p", str(cluster.port), "-U", cluster.user, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PGPASSWORD": cluster.password, "PGCONNECT_TIMEOUT": "10"})
    if proc.returncode != 0:
        raise ClusterError(f"{tool} {' '.join(args)} failed: {proc.stderr.strip()}")


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first_line = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first_line)
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_tail(cluster: Cluster, lines: int = 20) -> str:
    try:
        return "\n".join(cluster.log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def start_cluster(base_dir: Path | str | None = None, bindir: Path | None = None) -> Cluster:
    """initdb + pg_ctl start + createdb; returns the running cluster (stop it with .stop())."""
    bindir = bindir or find_bindir()
    if bindir is None:
        raise ClusterError("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found; "
                           "install PostgreSQL (e.g. apt-get install postgresql) or set PG_BINDIR")
    run_as = server_user()
    if base_dir is None:
        base = Path(tempfile.mkdtemp(prefix="tiktok-pg-"))
    else:
        base = Path(base_dir).resolve()
        base.mkdir(parents=True, exist_ok=True)
        if any(base.iterdir()):
            raise ClusterError(f"{base} is not empty")
    if run_as:
        account = pwd.getpwnam(run_as)
        os.chown(base, account.pw_uid, account.pw_gid)
    base.chmod(0o755)  # the socket lives here; every local user may connect (trust auth, test data only)

    cluster = Cluster(base_dir=base, bindir=bindir, port=0, run_as=run_as)
    try:
        locale = server_locale()
        init = _run([str(bindir / "initdb"), "-D", str(cluster.data_dir), "-U", SUPERUSER, "-A", "trust",
                     "-E", "UTF8", *([f"--locale={locale}"] if locale else []), "--no-sync", "--no-instructions"],
                    run_as)
        if init.returncode != 0:
            raise ClusterError(f"initdb failed in {base} as {run_as or 'the current user'}: "
                               f"{(init.stderr or init.stdout).strip()}"
                               + (" (can that user reach the directory?)" if run_as else ""))
        for attempt in range(1, START_ATTEMPTS + 1):
            cluster.port = free_port()
            options = f"-p {cluster.port} -k {shlex.quote(str(base))} -c listen_addresses={HOST} {SERVER_OPTIONS}"
            started = _run([str(bindir / "pg_ctl"), "start", "-D", str(cluster.data_dir), "-l", str(cluster.log_file),
                            "-w", "-t", "60", "-o", options], run_as)
            if started.returncode == 0:
                break
            if attempt == START_ATTEMPTS or "could not bind" not in _log_tail(cluster):
                raise ClusterError(f"pg_ctl start failed: {(started.stderr or started.stdout).strip()}\n"
                                   f"{_log_tail(cluster)}")
        cluster.save()
        _client(cluster, "createdb", DATABASE)
    except BaseException:
        stop_cluster(base, remove=base_dir is None, cluster=cluster)
        raise
    return cluster


def stop_cluster(base_dir: Path | str, remove: bool = True, cluster: Cluster | None = None) -> None:
    """Stop the server of the cluster in base_dir (fast shutdown, then kill) and remove the directory."""
    base = Path(base_dir)
    if cluster is None:
        if not (base / METADATA).exists() and not (base / "data").exists():
            return  # already gone
        cluster = Cluster.load(base)
    pid = _postmaster_pid(cluster.data_dir)
    if pid is not None and _alive(pid):
        _run([str(cluster.bindir / "pg_ctl"), "stop", "-D", str(cluster.data_dir), "-m", "fast", "-w", "-t", "30"],
             cluster.run_as, timeout=60)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the postmaster; its children exit when it does
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        if _alive(pid):
            raise ClusterError(f"the server (pid {pid}) of {base} did not stop")
    if remove:
        shutil.rmtree(base, ignore_errors=True)


def _start_watchdog(cluster: Cluster) -> subprocess.Popen[bytes]:
    """A process that stops the cluster if this one dies without doing so (SIGKILL, a crash)."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "watch", "--parent", str(os.getpid()), str(cluster.base_dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C of the terminal must not take it down before it cleans up
    )


@contextlib.contextmanager
def cluster(base_dir: Path | str | None = None, bindir: Path | None = None) -> Iterator[Cluster]:
    """A running cluster for the duration of the block; always stopped and removed afterwards."""
    running = start_cluster(base_dir, bindir)
    watchdog = _start_watchdog(running)

    def cleanup() -> None:
        try:
            stop_cluster(running.base_dir, cluster=running)
        finally:
            if watchdog.poll() is None:
                watchdog.terminate()
                watchdog.wait(timeout=10)

    atexit.register(cleanup)
    try:
        yield running
    finally:
        atexit.unregister(cleanup)
        cleanup()


def _watch(parent: int, base_dir: Path) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while os.getppid() == parent and base_dir.exists():
        time.sleep(0.5)
    if base_dir.exists():
        with contextlib.suppress(ClusterError, OSError):
            stop_cluster(base_dir)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a cluster; prints `export TIKTOK_PG_...` lines for eval")
    start.add_argument("--dir", type=Path, help="an empty or new directory for the cluster (default: a temp dir)")
    stop = commands.add_parser("stop", help="stop the cluster in DIR and remove DIR")
    stop.add_argument("dir", type=Path)
    stop.add_argument("--keep", action="store_true", help="stop the server but keep the directory")
    watch = commands.add_parser("watch", help=argparse.SUPPRESS)
    watch.add_argument("--parent", type=int, required=True)
    watch.add_argument("dir", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            running = start_cluster(args.dir)
            for name, value in running.env.items():
                print(f"export {name}={shlex.quote(value)}")
            print(f"# PostgreSQL ({running.bindir}) on {running.host}:{running.port}, database {running.dbname}; "
                  f"stop it with: {Path(sys.argv[0]).name} stop {shlex.quote(str(running.base_dir))}")
        elif args.command == "stop":
            stop_cluster(args.dir, remove=not args.keep)
        else:
            return _watch(args.parent, args.dir)
    except ClusterError as exc:
        print(f"pg_cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
