"""Run the embedded MongoDB-compatible server (nx-27017) as a child process of wildpy."""

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
from pathlib import Path
from types import TracebackType
from typing import Self

import pymongo
import pymongo.errors

__all__ = ["DataDirInUse", "EmbeddedDatabaseError", "EmbeddedMongo"]

log = logging.getLogger(__name__)

LOCK_FILE = "wildpy.lock"
DB_SUBDIR = "db"
LOG_FILE = "nx-27017.log"
PID_FILE = "nx-27017.pid"

# nx-27017 logs every generic command at INFO and never rotates; one old generation is enough
# to diagnose a crash without letting the file grow for ever.
_LOG_ROTATE_BYTES = 10 * 1024 * 1024
_POLL_INTERVAL = 0.05
_STOP_TIMEOUT = 5.0
# Only an automatically chosen port is retried: between closing our probe socket and the child's
# bind, another process may take it. A fixed port that is busy is a configuration error.
_SPAWN_ATTEMPTS = 3
_LOG_TAIL_LINES = 15

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

sys.argv = ["nx-27017", *sys.argv[2:]]
from nx_27017.nx_27017 import main
sys.exit(main())
"""


class EmbeddedDatabaseError(Exception):
    """The embedded database could not be started; the message says why, for the operator."""


class DataDirInUse(EmbeddedDatabaseError):
    """Another process holds the data directory's lock (a running wildpy, usually)."""


class EmbeddedMongo:
    """One nx-27017 server serving the SQLite files under `data_dir`, owned by this process.

    The data directory is locked from start() to stop(), and for as long as the server process
    lives, so two wildpy processes never serve the same files. `start()` after `stop()` reuses the
    same port, so clients built with the old URI reconnect on their own.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(os.fspath(data_dir)).expanduser().absolute()
        self.host = host
        self.startup_timeout = startup_timeout
        self._fixed_port = port is not None
        self._port: int | None = port
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._lifeline_fd: int | None = None
        # start()/stop() may be called from worker threads (astart/astop): serialise them.
        self._mutex = threading.Lock()

    # -- public state -----------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The server's URI; it stays valid across stop()/start() cycles."""
        if self._port is None:
            raise EmbeddedDatabaseError("the embedded database has not been started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mongodb://{host}:{self._port}"

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
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / DB_SUBDIR).mkdir(exist_ok=True)
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

    def _acquire_lock(self) -> None:
        if self._lock_fd is not None:
            return
        path = self.data_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # flock (not lockf) locks the open file description, so a second EmbeddedMongo in this
            # same process is refused too, and the server child that inherits the descriptor keeps
            # the directory locked until it is gone, even if this process dies first.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DataDirInUse(
                    f"another wildpy process is already using the data directory {self.data_dir}"
                ) from None
            raise EmbeddedDatabaseError(f"cannot lock {path}: {exc.strerror}") from exc
        # The pid is only for the operator's curiosity; the flock is what counts.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _spawn_until_ready(self) -> str:
        # Under our lock any pid file is stale; nx-27017 refuses to start if it names a live
        # process, and after a SIGKILL that pid may have been reused by anything.
        (self.data_dir / PID_FILE).unlink(missing_ok=True)
        for attempt in range(1, _SPAWN_ATTEMPTS + 1):
            if self._port is None:
                self._port = _free_port(self.host)
            log_offset = self._spawn()
            error = self._wait_until_ready(log_offset)
            if error is None:
                return self.uri
            port_taken = _is_address_in_use(error)
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
        assert self._port is not None
        self._rotate_log()
        read_fd, write_fd = os.pipe()
        assert self._lock_fd is not None
        cmd = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            str(read_fd),
            "--data-dir",
            str(self.data_dir / DB_SUBDIR),
            "--host",
            self.host,
            "-p",
            str(self._port),
            # nx-27017 logs to stderr and duplicates everything into --log-file; we capture
            # stderr, which also gets tracebacks (a failed bind), so one file holds it all.
            "--log-file",
            os.devnull,
            "--pid-file",
            str(self.data_dir / PID_FILE),
        ]
        # The child gets its own copy of the log descriptor; ours is closed right after the spawn.
        with open(self.log_path, "ab") as log_handle:
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
        assert proc is not None and self._port is not None
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
            # A bare TCP connect first: pymongo waits at least 500 ms between checks of a
            # server it found down, which would add half a second to every start.
            if _accepts_connections(self.host, self._port) and self._answers_ping(proc, remaining):
                log.info(
                    "embedded database ready on %s (pid %d) in %.2f s",
                    self.uri,
                    proc.pid,
                    time.monotonic() - started,
                )
                return None
            time.sleep(_POLL_INTERVAL)

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
            os.close(self._lock_fd)
            self._lock_fd = None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _is_address_in_use(message: str) -> bool:
    lowered = message.lower()
    return "address already in use" in lowered or f"[errno {errno.EADDRINUSE}]" in lowered
