"""Run the embedded MongoDB-compatible server (nx-27017) as a child process of wildpy.

nx-27017 has no authentication: whoever can connect can read and write everything. By default
it therefore listens on a Unix socket inside the 0700 data directory and nowhere else, so the
kernel refuses every other local user at connect(); TCP (host/port) is opt-in.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from types import TracebackType
from typing import Self

import pymongo
import pymongo.errors

from wildpy.datadir import PRIVATE_FILE_MODE, make_private_dir

__all__ = ["DataDirInUse", "EmbeddedDatabaseError", "EmbeddedMongo"]

log = logging.getLogger(__name__)

LOCK_FILE = "wildpy.lock"
DB_SUBDIR = "db"
LOG_FILE = "nx-27017.log"
PID_FILE = "nx-27017.pid"
# pymongo takes a host that ends in ".sock" for a Unix socket path
SOCKET_FILE = "nx-27017.sock"
# sun_path holds 108 bytes on Linux (104 on macOS and the BSDs), the terminating NUL included
_SOCKET_PATH_MAX = 103 if sys.platform == "darwin" or "bsd" in sys.platform else 107

# nx-27017 logs every generic command at INFO and never rotates; one old generation is enough
# to diagnose a crash without letting the file grow for ever.
_LOG_ROTATE_BYTES = 10 * 1024 * 1024
_POLL_INTERVAL = 0.05
_STOP_TIMEOUT = 5.0
# Only an automatically chosen port is retried: between closing our probe socket and the child's
# bind, another process may take it. A fixed port that is busy is a configuration error.
_SPAWN_ATTEMPTS = 3
_LOG_TAIL_LINES = 15
# How long start() waits for the server a killed wildpy left behind to exit and free the lock;
# the bootstrap's watcher ends it within about 10 s of its parent's death.
_ORPHAN_WAIT = 15.0

# `python -m nx_27017` does not work (the package has no __main__) and `-m nx_27017.nx_27017`
# warns about double import; the console script may not sit next to sys.executable (user
# installs, zipapps). Importing `main` under the very interpreter that runs wildpy always finds
# the pinned version. The bootstrap also watches a "lifeline" pipe whose write end only the
# parent holds: when the parent exits, however abruptly, the read returns EOF and the server
# terminates itself, so orphaned servers do not pile up. (PR_SET_PDEATHSIG would fire when the
# *thread* that spawned the child ends, e.g. an asyncio.to_thread worker, and exists only on
# Linux; preexec_fn is unsafe in a process that has threads.)
_BOOTSTRAP = """\
# wildpy embedded database: nx-27017 (wildpy.storage.embedded)
import os, signal, sys, threading, time

# Whatever the server creates (SQLite files and their -wal/-shm, the pid file, the socket) is
# the owner's alone, whatever umask wildpy was started with.
os.umask(0o077)

def _watch(fd):
    try:
        while os.read(fd, 64):
            pass
    except OSError:
        pass
    # To the main thread, whose handler makes nx-27017 exit cleanly; hard exit if it hangs.
    signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
    time.sleep(10)
    os._exit(1)

threading.Thread(target=_watch, args=(int(sys.argv[1]),), daemon=True).start()

# nx-27017 0.8.1 runs simple update operators as SQL json_set(), which stores a $set boolean as
# 0/1, a $set datetime as a string and a $push sub-document as a JSON string: silently wrong
# types. Its Python update path keeps every BSON type. Send updates (only) down that path; each
# command runs under the database's lock, so the read-modify-write stays atomic. Queries keep
# the fast SQL path.
from neosqlite.collection.query_helper import _sql_updates, update_operations
update_operations.get_force_fallback = _sql_updates.get_force_fallback = lambda: True

# nx-27017 can only listen on TCP, where any local user can connect. Given a socket path, serve
# the very same client handler on a Unix socket instead (and open no TCP port at all).
_socket_path = sys.argv[2]
if _socket_path:
    import asyncio, logging
    import nx_27017.server as _server

    async def _serve_unix(host, port, handler):
        async def _client(reader, writer):
            await _server.handle_client(reader, writer, handler)

        server = await asyncio.start_unix_server(_client, path=_socket_path)
        logging.getLogger("nx_27017").info("Listening on %s", _socket_path)
        async with server:
            await server.serve_forever()

    _server.run_server = _serve_unix

sys.argv = ["nx-27017", *sys.argv[3:]]
from nx_27017.nx_27017 import main
sys.exit(main())
"""


class EmbeddedDatabaseError(Exception):
    """The embedded database could not be started; the message says why, for the operator."""


class DataDirInUse(EmbeddedDatabaseError):
    """Another process holds the data directory's lock (a running wildpy, usually)."""


class EmbeddedMongo:
    """One nx-27017 server serving the SQLite files under `data_dir`, owned by this process.

    The data directory (created 0700) is locked from start() to stop(), and for as long
    as the server process lives, so two wildpy processes never serve the same files. The server
    listens on a Unix socket in the data directory, unless `host` or `port` asks for TCP (which
    every local user can reach: tests and debugging only). `start()` after `stop()` reuses the
    same socket or port, so clients built with the old URI reconnect on their own.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str | None = None,
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(os.fspath(data_dir)).expanduser().absolute()
        self.tcp = host is not None or port is not None
        self.host = host or "127.0.0.1"
        self.startup_timeout = startup_timeout
        self._fixed_port = port is not None
        self._port: int | None = port
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._lifeline_fd: int | None = None
        # the socket URI is valid from the first start() on, as a TCP URI is once it has a port
        self._started = False
        # start()/stop() may be called from worker threads (astart/astop): serialise them.
        self._mutex = threading.Lock()

    # -- public state -----------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The server's URI; it stays valid across stop()/start() cycles."""
        if not self.tcp:
            if self._process is None and not self._started:
                raise EmbeddedDatabaseError("the embedded database has not been started")
            return "mongodb://" + urllib.parse.quote(str(self.socket_path), safe="")
        if self._port is None:
            raise EmbeddedDatabaseError("the embedded database has not been started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mongodb://{host}:{self._port}"

    @property
    def socket_path(self) -> Path:
        """Where the server listens unless it was asked for TCP."""
        return self.data_dir / SOCKET_FILE

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (tests kill it to simulate a crash)."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        """Lock the data directory, spawn the server, wait until it answers; return its URI."""
        with self._mutex:
            if self.running:
                return self.uri
            # A server that crashed on its own leaves handles behind: drop them, keep the lock.
            self._reap(release_lock=False)
            if importlib.util.find_spec("nx_27017") is None:
                raise EmbeddedDatabaseError(
                    "nx-27017 is not installed in this Python environment "
                    "(pip install nx-27017==0.8.1), and no MongoDB URI is configured"
                )
            if not self.tcp:
                self._check_socket_path()
            # Created private; refusing a directory others can enter is the caller's decision
            # (wildpy.datadir.prepare_data_dir): the socket itself is 0700 either way.
            make_private_dir(self.data_dir)
            make_private_dir(self.data_dir / DB_SUBDIR)
            self._acquire_lock()
            try:
                return self._spawn_until_ready()
            except BaseException:
                self._reap(release_lock=True)
                raise

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after a few seconds); idempotent.

        nx-27017 exits 0 within tens of milliseconds on SIGTERM; SQLite in WAL mode keeps every
        committed write even if the SIGKILL fallback is needed.
        """
        with self._mutex:
            proc = self._process
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    log.warning(
                        "embedded database did not stop in %.0f s, killing it", _STOP_TIMEOUT
                    )
                    proc.kill()
                    proc.wait()
            self._reap(release_lock=True)

    async def astart(self) -> str:
        """start() off the event loop. Cancelling does not abort the start: call astop()."""
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    # -- internals --------------------------------------------------------------------------

    def _check_socket_path(self) -> None:
        length = len(os.fsencode(self.socket_path))
        if length > _SOCKET_PATH_MAX:
            raise EmbeddedDatabaseError(
                f"the data directory path {self.data_dir} is too long for the embedded "
                f"database's socket ({length} bytes, at most {_SOCKET_PATH_MAX}): "
                "choose a shorter storage.dataDir"
            )

    def _acquire_lock(self) -> None:
        if self._lock_fd is not None:
            return
        path = self.data_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            self._lock_or_wait_for_orphan(fd, path)
        except BaseException:
            os.close(fd)
            raise
        # The pid is for the operator, and for the next start to tell a live wildpy (refuse)
        # from an orphaned server (wait); the flock is what counts.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _lock_or_wait_for_orphan(self, fd: int, path: Path) -> None:
        """flock the data directory; wait while only a dead wildpy's server still holds it.

        After a kill -9 of wildpy its server lives on for a moment (it notices the lifeline's
        EOF and shuts down cleanly) and keeps the inherited lock; a supervisor restarting wildpy
        at once must not be refused for that. A live holder is refused at once, as before.
        """
        deadline: float | None = None
        while True:
            try:
                # flock (not lockf) locks the open file description, so a second EmbeddedMongo in
                # this same process is refused too, and the server child that inherits the
                # descriptor keeps the directory locked until it is gone, even if this process
                # dies first.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise EmbeddedDatabaseError(f"cannot lock {path}: {exc.strerror}") from exc
            owner = _recorded_pid(fd)
            if owner is None or _is_alive(owner):
                raise DataDirInUse(
                    f"another wildpy process is already using the data directory {self.data_dir}"
                )
            now = time.monotonic()
            if deadline is None:
                deadline = now + _ORPHAN_WAIT
                log.warning(
                    "waiting for the embedded database left behind by wildpy process %d "
                    "to release %s",
                    owner,
                    self.data_dir,
                )
            elif now >= deadline:
                raise DataDirInUse(
                    f"the embedded database left behind by wildpy process {owner} still holds "
                    f"the data directory {self.data_dir} after {_ORPHAN_WAIT:g} s"
                )
            time.sleep(_POLL_INTERVAL)

    def _spawn_until_ready(self) -> str:
        # Under our lock any pid file is stale; nx-27017 refuses to start if it names a live
        # process, and after a SIGKILL that pid may have been reused by anything. A socket left
        # by a crash is stale too.
        (self.data_dir / PID_FILE).unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)
        for attempt in range(1, _SPAWN_ATTEMPTS + 1):
            if self.tcp and self._port is None:
                self._port = _free_port(self.host)
            log_offset = self._spawn()
            error = self._wait_until_ready(log_offset)
            if error is None:
                self._started = True
                return self.uri
            port_taken = self.tcp and _is_address_in_use(error)
            self._reap(release_lock=False)
            if port_taken and not self._fixed_port and attempt < _SPAWN_ATTEMPTS:
                log.warning(
                    "port %s was taken before the embedded database could bind it; "
                    "retrying on another port (clients holding the old URI must reconnect)",
                    self._port,
                )
                self._port = None
                continue
            raise EmbeddedDatabaseError(error)
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self) -> int:
        """Start the child; return the log offset where its output begins."""
        self._rotate_log()
        read_fd, write_fd = os.pipe()
        assert self._lock_fd is not None
        listen = ["--host", self.host, "-p", str(self._port)] if self.tcp else []
        cmd = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            str(read_fd),
            "" if self.tcp else str(self.socket_path),
            "--data-dir",
            str(self.data_dir / DB_SUBDIR),
            *listen,
            # nx-27017 logs to stderr and duplicates everything into --log-file; we capture
            # stderr, which also gets tracebacks (a failed bind), so one file holds it all.
            "--log-file",
            os.devnull,
            "--pid-file",
            str(self.data_dir / PID_FILE),
        ]
        # The child gets its own copy of the log descriptor; ours is closed right after the spawn.
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
        with open(log_fd, "ab") as log_handle:
            log_offset = log_handle.tell()
            try:
                self._process = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log_handle,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    pass_fds=(read_fd, self._lock_fd),
                    # Own session: a Ctrl-C on the terminal reaches only wildpy, which then shuts
                    # the database down after its own clients, not before.
                    start_new_session=True,
                )
            except BaseException:
                os.close(write_fd)
                raise
            finally:
                os.close(read_fd)
        self._lifeline_fd = write_fd
        return log_offset

    def _wait_until_ready(self, log_offset: int) -> str | None:
        """Poll until the child answers (None), or return why it did not, for the operator."""
        proc = self._process
        assert proc is not None
        started = time.monotonic()
        deadline = started + self.startup_timeout
        while True:
            code = proc.poll()
            if code is not None:
                tail = self._log_tail(log_offset)
                last = tail.splitlines()[-1] if tail else "(no output)"
                return (
                    f"the embedded database (nx-27017) exited during startup with code {code}: "
                    f"{last}\n--- last lines of {self.log_path} ---\n{tail}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                proc.kill()
                proc.wait()
                tail = self._log_tail(log_offset)
                return (
                    f"the embedded database (nx-27017) did not answer on {self.uri} within "
                    f"{self.startup_timeout:g} s\n--- last lines of {self.log_path} ---\n{tail}"
                )
            # A bare connect first: pymongo waits at least 500 ms between checks of a
            # server it found down, which would add half a second to every start.
            if self._accepts_connections() and self._answers_ping(proc, remaining):
                log.info(
                    "embedded database ready on %s (pid %d) in %.2f s",
                    self.uri,
                    proc.pid,
                    time.monotonic() - started,
                )
                return None
            time.sleep(_POLL_INTERVAL)

    def _accepts_connections(self) -> bool:
        if self.tcp:
            assert self._port is not None
            return _accepts_tcp_connections(self.host, self._port)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                probe.connect(str(self.socket_path))
                return True
        except OSError:
            return False

    def _answers_ping(self, proc: subprocess.Popen[bytes], remaining: float) -> bool:
        # Short: a listener that is not ours (a busy port) accepts the TCP connection and then
        # says nothing; the loop must get back to noticing that our child has exited.
        timeout_ms = max(50, int(min(remaining, 0.25) * 1000))
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=timeout_ms,
            directConnection=True,
        )
        try:
            client.admin.command("ping")
            # Make sure it is *our* server that answers and not another one that already held
            # the port (ours will exit with "address already in use" in a moment).
            status = client.admin.command("serverStatus")
        except pymongo.errors.PyMongoError:
            return False
        finally:
            client.close()
        pid = status.get("pid")
        return pid is None or int(pid) == proc.pid

    def _log_tail(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return ""
        lines = data.decode("utf-8", "replace").rstrip().splitlines()
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def _rotate_log(self) -> None:
        try:
            if self.log_path.stat().st_size > _LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_name(LOG_FILE + ".1"))
        except FileNotFoundError:
            pass

    def _reap(self, *, release_lock: bool) -> None:
        """Forget a finished child and close what belonged to it (and the lock, if asked)."""
        proc = self._process
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self._process = None
        if self._lifeline_fd is not None:
            os.close(self._lifeline_fd)
            self._lifeline_fd = None
        if release_lock and self._lock_fd is not None:
            # still ours to remove: the lock is held until the next line
            if not self.tcp:
                self.socket_path.unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _accepts_tcp_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _is_address_in_use(message: str) -> bool:
    lowered = message.lower()
    return "address already in use" in lowered or f"[errno {errno.EADDRINUSE}]" in lowered


def _recorded_pid(lock_fd: int) -> int | None:
    """The pid the lock holder wrote into the lock file, if it wrote one."""
    try:
        text = os.pread(lock_fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process stays a zombie until its parent reaps it: it exists, but holds nothing.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill()
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])
