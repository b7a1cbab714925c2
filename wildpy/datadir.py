"""The data directory: created private (0700), checked private at every start, private files.

It holds the embedded database's files and socket, the root token and the database URI, so any
local account that can enter it can read password hashes or plant a root token. Creating it 0700
is not enough on its own (an operator may chmod it, or an older wildpy created it 0755): every
start checks it and refuses, in one line, rather than serve from a directory others can read.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from wildpy.config import ConfigError

__all__ = ["DataDirError", "make_private_dir", "prepare_data_dir", "write_private"]

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class DataDirError(ConfigError):
    """The data directory cannot be used safely; one line that says what to do.

    A ConfigError: `storage.dataDir` names it, and the CLI reports those as one line.
    """


def make_private_dir(path: Path) -> bool:
    """Create `path` 0700 if it is missing (parents as `mkdir -p` would); True if it was created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, PRIVATE_DIR_MODE)
    except FileExistsError:
        return False
    # mkdir's mode is filtered through the umask, which may have taken the owner's bits too
    os.chmod(path, PRIVATE_DIR_MODE)
    return True


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory 0700, or check that an existing one is closed to other users.

    Raises DataDirError when it is not a directory, belongs to another user or is group- or
    world-accessible. Inside a private directory, files and directories an older wildpy created
    with group/world bits are tightened on the way (they were unreachable already; this keeps
    them private should the directory ever be opened up).
    """
    if make_private_dir(path):
        return path
    try:
        info = os.stat(path)
    except OSError as exc:
        raise DataDirError(f"cannot use the data directory {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise DataDirError(f"the data directory {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise DataDirError(
            f"the data directory {path} belongs to uid {info.st_uid}, not to this user "
            f"(uid {os.geteuid()}): run wildpy as its owner"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise DataDirError(
            f"the data directory {path} is accessible to other users (mode {mode:04o}); "
            f"run: chmod 700 {path}"
        )
    _tighten_contents(path)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` in a 0600 file, atomically (a reader never sees half of it)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    # O_EXCL: created by us, now, with the mode we give; never a file someone left for us
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def _tighten_contents(root: Path) -> None:
    uid = os.geteuid()
    for directory, subdirs, files in os.walk(root):
        for name in [*subdirs, *files]:
            entry = os.path.join(directory, name)
            try:
                info = os.lstat(entry)
            except FileNotFoundError:  # the embedded server removed it meanwhile
                continue
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode) or info.st_uid != uid or not mode & 0o077:
                continue
            os.chmod(entry, mode & ~0o077)
            log.info("made %s private (was mode %04o)", entry, mode)
