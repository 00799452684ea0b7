"""Throw-away PostgreSQL + PostGIS servers for the tests.

The storage tests run against a real PostgreSQL 15 with PostGIS 3 (Debian's ``postgresql-15`` and
``postgresql-15-postgis-3``, installed by ``scripts/setup.sh --with-test-tools``). They never use a system cluster:
:class:`PgCluster` runs ``initdb`` into a fresh temporary directory and starts a private server there that

* listens on 127.0.0.1 only, on a free TCP port, with its unix socket inside the cluster directory;
* trusts every local connection (``--auth=trust``), superuser ``postgres``;
* keeps ``fsync``, ``synchronous_commit`` and ``full_page_writes`` on, so a commit is on disk when it returns and the
  crash tests (:meth:`PgCluster.kill`, then :meth:`PgCluster.start`) test real recovery;
* uses little memory (small ``shared_buffers``) but allows ``max_connections = 200`` (connection pools, many workers).

PostgreSQL refuses to run as root. When the tests run as root, every PostgreSQL program runs as the ``postgres``
system user (created by the Debian package) through ``runuser -u postgres --`` and the cluster directory is
given to that user. The directory must then be reachable by that user: the default base directory is the system
temporary directory, not pytest's ``tmp_path`` (which is private to root).

Typical use (the fixtures in ``tests/conftest.py`` do this)::

    cluster = PgCluster.create(Path(tempfile.gettempdir()))   # initdb + start
    url = cluster.create_database("t1")                       # a database with the postgis extension
    ...
    cluster.destroy()                                         # stop + remove the directory
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

PG_MAJOR = 15
DEBIAN_BINDIR = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
SETUP_HINT = ("run `scripts/setup.sh --with-test-tools` (it installs Debian's postgresql-15 and "
              "postgresql-15-postgis-3)")
SUPERUSER = "postgres"
SYSTEM_USER = "postgres"           # the account PostgreSQL runs as when the tests run as root
TEMPLATE_DB = "geoserver_postgis_template"
SOCKET_PATH_MAX = 107              # sun_path is 108 bytes on Linux, including the final NUL
_REQUIRED_PROGRAMS = ("initdb", "pg_ctl", "postgres")


def find_bindir() -> Path:
    """The directory with ``initdb``, ``pg_ctl`` and ``postgres``: Debian's PostgreSQL 15 directory, else what
    ``pg_config --bindir`` says. Raises RuntimeError (never skips) when neither has them."""
    candidates = [DEBIAN_BINDIR]
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    for bindir in candidates:
        if all(os.access(bindir / prog, os.X_OK) for prog in _REQUIRED_PROGRAMS):
            return bindir
    raise RuntimeError(
        f"PostgreSQL server programs ({', '.join(_REQUIRED_PROGRAMS)}) not found in "
        f"{', '.join(str(c) for c in candidates)}: {SETUP_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process; a zombie (dead, not yet reaped by its parent) counts as dead."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]      # the command name (in parentheses) may contain spaces
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (PostgreSQL's server processes are the postmaster's children)."""
    kids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


class PgCluster:
    """One private PostgreSQL server in its own temporary directory (see the module docstring).

    Attributes: ``root`` (the temporary directory), ``datadir``, ``socket_dir``, ``logfile`` (the server log: read
    it when something fails), ``port``, ``user`` (the superuser name used in :meth:`url`), ``bindir``.
    """

    def __init__(self, root: Path, bindir: Path, port: int, run_as: str | None):
        self.root = root
        self.bindir = bindir
        self.port = port
        self.run_as = run_as
        self.user = SUPERUSER
        self.datadir = root / "data"
        self.socket_dir = root / "sock"
        self.logfile = root / "postgres.log"
        self._template_lock = threading.Lock()
        self._template_ready = False
        self._started_once = False
        self._destroyed = False

    # ---------------------------------------------------------------------------------------------- creation
    @classmethod
    def create(cls, base_dir: Path | None = None, *, start: bool = True) -> "PgCluster":
        """``initdb`` a new cluster into a fresh directory under ``base_dir`` (default: the system temporary
        directory) and, unless ``start=False``, start it. Raises RuntimeError when PostgreSQL is not installed."""
        bindir = find_bindir()
        run_as = None
        if os.geteuid() == 0:                       # initdb and postgres refuse to run as root
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root, PostgreSQL must run as another user, but `runuser` is missing")
            try:
                pw = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise RuntimeError(f"running as root, PostgreSQL must run as the {SYSTEM_USER!r} system user, which "
                                   f"does not exist: {SETUP_HINT}") from None
            run_as = SYSTEM_USER
        base = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=base))
        cluster = cls(root, bindir, free_port(), run_as)
        try:
            if len(str(cluster.socket_dir / ".s.PGSQL.65535")) > SOCKET_PATH_MAX:
                raise RuntimeError(f"{root} is too long for a unix socket path; use a shorter base_dir")
            cluster.socket_dir.mkdir()
            if run_as:
                for path in (root, cluster.socket_dir):
                    os.chown(path, pw.pw_uid, pw.pw_gid)
                if cluster._run(["test", "-w", str(root)], check=False).returncode != 0:
                    raise RuntimeError(f"the {run_as!r} user cannot write to {root}: a parent directory is private "
                                       "(pytest's tmp_path is, under root); use a base_dir under the system "
                                       "temporary directory")
            cluster._initdb()
            cluster._configure()
            atexit.register(cluster._atexit)
            if start:
                cluster.start()
        except BaseException:
            atexit.unregister(cluster._atexit)
            if cluster.is_running():
                cluster.kill()
            cluster._remove_tree()
            raise
        return cluster

    def _initdb(self) -> None:
        common = [str(self.bindir / "initdb"), "-D", str(self.datadir), f"--username={self.user}", "--auth=trust",
                  "-E", "UTF8"]
        # initdb syncs everything it wrote to disk at the end (no --no-sync): the cluster starts durable.
        result = self._run(common + ["--locale=C.UTF-8"], check=False)
        if result.returncode != 0 and "locale" in (result.stderr + result.stdout).lower():
            shutil.rmtree(self.datadir, ignore_errors=True)      # no C.UTF-8 locale on this system: plain C
            result = self._run(common + ["--locale=C"], check=False)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def _configure(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            "shared_buffers": "32MB",
            "fsync": "on",                   # real durability: the crash tests rely on it
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_wal_size": "256MB",
            "jit": "off",                    # compiling queries only slows small test queries down
            "logging_collector": "off",      # pg_ctl -l writes the log file
            "log_min_messages": "warning",
            "timezone": "'UTC'",
        }
        # The port is not in the file: start() passes it on the command line, so a port clash can be retried.
        text = "\n# tests/pg_support.py\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as f:   # keeps the file's owner
            f.write(text)

    # ---------------------------------------------------------------------------------------------- processes
    def _run(self, args: list[str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a program as the cluster's owner (through runuser when we are root), in the cluster directory."""
        cmd = (["runuser", "-u", self.run_as, "--"] if self.run_as else []) + args
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}   # no PGDATA, PGPORT, ... surprises
        env["LC_ALL"] = "C"                                                    # English messages to match on
        result = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}\n"
                               f"{result.stderr}\n--- server log ---\n{self.log_tail()}")
        return result

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server log (for error messages)."""
        try:
            return self.logfile.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def postmaster_pid(self) -> int | None:
        """The postmaster's process id from ``postmaster.pid`` (None when the file is absent)."""
        try:
            first = (self.datadir / "postmaster.pid").read_text(encoding="ascii").split("\n", 1)[0].strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(first) if first.isdigit() else None

    def is_running(self) -> bool:
        """Whether the server's postmaster process is alive."""
        pid = self.postmaster_pid()
        return pid is not None and _process_alive(pid)

    def start(self, timeout: float = 60) -> None:
        """Start the server (``pg_ctl start -w``) and wait until it accepts connections; crash recovery after
        :meth:`kill` happens here. Does nothing when it is running. On the first start, a port taken in the
        meantime by someone else makes it try another port; afterwards the port stays (``url()`` stays valid)."""
        if self._destroyed:
            raise RuntimeError("the cluster was destroyed")
        if self.is_running():
            return
        self._clear_stale_pid_file()
        attempts = 1 if self._started_once else 5
        for attempt in range(attempts):
            log_start = self.logfile.stat().st_size if self.logfile.exists() else 0
            result = self._run([str(self.bindir / "pg_ctl"), "start", "-w", "-t", str(int(timeout)),
                                "-D", str(self.datadir), "-l", str(self.logfile), "-o", f"-p {self.port}"],
                               check=False, timeout=timeout + 30)
            if result.returncode == 0:
                self._started_once = True
                return
            new_log = self.log_tail(1_000_000)[log_start:] if self.logfile.exists() else ""
            port_clash = re.search(r"could not (bind|create listen socket)", new_log)
            if port_clash and attempt + 1 < attempts:
                self.port = free_port()
                continue
            raise RuntimeError(f"pg_ctl start failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"--- server log ---\n{new_log[-4000:]}")

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """Stop the server (``pg_ctl stop -m MODE -w``): "smart" waits for clients, "fast" (the default)
        disconnects them and shuts down cleanly, "immediate" quits without a shutdown checkpoint. Does nothing when
        the server is not running."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        if not self.is_running():
            return
        self._run([str(self.bindir / "pg_ctl"), "stop", "-w", "-t", str(int(timeout)), "-m", mode,
                   "-D", str(self.datadir)], timeout=timeout + 30)

    def kill(self, timeout: float = 30) -> None:
        """Crash the server: SIGKILL to the postmaster, then to every server process it had started (as if the
        machine had lost power, minus the operating system's page cache), and wait until they are all gone. The
        next :meth:`start` runs crash recovery from the write-ahead log."""
        pid = self.postmaster_pid()
        if pid is None or not _process_alive(pid):
            return
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)       # the postmaster first: it must not restart the others
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while any(_process_alive(p) for p in [pid, *children]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"server processes still alive {timeout} s after SIGKILL")
            time.sleep(0.02)

    def _clear_stale_pid_file(self) -> None:
        """After :meth:`kill`, ``postmaster.pid`` and the socket's lock file name a dead postmaster. PostgreSQL
        removes such files itself when that process id is free, but not while the dead postmaster is a zombie:
        orphaned by ``pg_ctl``, it is reaped by PID 1, which in a container may take a second or more. A zombie has
        stopped running, so its lock files go here, which is exactly what the server would do."""
        for lock in [self.datadir / "postmaster.pid", *self.socket_dir.glob(".s.PGSQL.*.lock")]:
            try:
                first = lock.read_text(encoding="ascii").split("\n", 1)[0].strip()
            except (OSError, UnicodeDecodeError):
                continue
            pid = abs(int(first)) if first.lstrip("-").isdigit() else None    # a negative pid: a single-user backend
            if pid is not None and not _process_alive(pid) and Path(f"/proc/{pid}").exists():
                lock.unlink(missing_ok=True)

    def _remove_stale_shared_memory(self) -> None:
        """A killed server leaves its small System V shared memory segment behind (the next start reclaims it).
        When the cluster is destroyed instead, remove it: its id is on line 7 of ``postmaster.pid``."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text(encoding="ascii").splitlines()
            shmid = int(lines[6].split()[1])
        except (OSError, UnicodeDecodeError, IndexError, ValueError):
            return
        if shutil.which("ipcrm"):
            subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True, check=False)

    # ---------------------------------------------------------------------------------------------- SQL
    def url(self, dbname: str = "postgres") -> str:
        """The connection URL of ``dbname``: ``postgresql://postgres@127.0.0.1:PORT/DBNAME`` (no password)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        """A psycopg connection to ``dbname``, autocommit unless told otherwise."""
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(self.url(dbname), **kwargs)

    def _ensure_template(self) -> None:
        """Create, once, a template database with the postgis extension; copying it is much faster than running
        ``CREATE EXTENSION postgis`` in every new database."""
        with self._template_lock:
            if self._template_ready:
                return
            with self.connect() as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEMPLATE_DB]).fetchone()
                if exists:
                    self._template_ready = True
                    return
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
            try:
                with self.connect(TEMPLATE_DB) as conn:
                    conn.execute("CREATE EXTENSION postgis")
            except psycopg.Error as exc:
                with self.connect() as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE_DB)))
                raise RuntimeError(f"CREATE EXTENSION postgis failed ({exc}): {SETUP_HINT}") from exc
            with self.connect() as conn:
                # A template nobody can connect to: no stray session can block CREATE DATABASE ... TEMPLATE.
                conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
                             .format(sql.Identifier(TEMPLATE_DB)))
            self._template_ready = True

    def create_database(self, name: str) -> str:
        """Create database ``name`` with the postgis extension already installed; return its URL."""
        self._ensure_template()
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                         sql.Identifier(TEMPLATE_DB)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting any sessions still on it."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # ---------------------------------------------------------------------------------------------- teardown
    def destroy(self) -> None:
        """Stop the server (killing it if a clean stop fails) and remove the cluster directory."""
        if self._destroyed:
            return
        try:
            try:
                self.stop("fast")
            except (RuntimeError, subprocess.TimeoutExpired):
                self.kill()
        finally:
            self._destroyed = True
            atexit.unregister(self._atexit)
            if not self.is_running():
                self._remove_stale_shared_memory()
            self._remove_tree()

    def _remove_tree(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _atexit(self) -> None:
        """Last resort when the test process ends without destroy() (e.g. interrupted): no orphaned servers."""
        try:
            self.kill()
            self._remove_stale_shared_memory()
        finally:
            self._remove_tree()

    def __repr__(self) -> str:
        return f"PgCluster(root={str(self.root)!r}, port={self.port}, running={self.is_running()})"
