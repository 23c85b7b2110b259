"""Atomic, durable file writes: the one writer every file enas stores goes through.

    atomic_write(path, write_fn)

        write_fn(f) into <folder>/.enas-tmp-XXXX   (same folder: the rename stays on one filesystem)
        flush + fsync(file)                          (the bytes are on disk before the name points at them)
        before_replace()                             (optional: keep the previous checkpoint)
        os.replace(temp, path)                       (atomic: readers see the old file or the new one)
        fsync(folder)                                (the new name survives a power loss)

Any failure removes the temporary file and leaves `path` as it was. OS errors become one-line
`UserError`s in words (disk full, read-only, no permission, missing folder) that name the file
and say what is still intact.
"""

from __future__ import annotations

import errno
import os
import tempfile
from typing import IO, Callable

from enas.errors import UserError

#: Name prefix of temporary files; a run directory's lock holder may delete stale ones.
TEMP_PREFIX = ".enas-tmp-"


def atomic_write(path: str | os.PathLike, write_fn: Callable[[IO], None], *, binary: bool = True,
                 make_parents: bool = False, permissions: int = 0o644,
                 before_replace: Callable[[], None] | None = None,
                 intact: str | Callable[[], str] | None = None) -> None:
    """Write `path` through a temporary file: all of it or nothing, and durable once this returns.

    write_fn       receives the open temporary file (binary unless `binary=False`)
    make_parents   create missing parent folders; otherwise a missing folder is an error
    before_replace runs after the new content is on disk, just before it takes the name
    intact         what an error message says is still intact (default: `path` unchanged)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        if make_parents:
            os.makedirs(folder, exist_ok=True)
        tmp = _write_temp(folder, write_fn, binary, permissions)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
        tmp = None
        fsync_folder(folder)
    except OSError as e:
        raise UserError(write_error_message(e, path, _intact_note(path, intact))) from None
    finally:
        if tmp is not None:
            _remove_quietly(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write` of a text file (reports, tables); creates missing folders."""
    atomic_write(path, lambda f: f.write(text), binary=False, make_parents=True)


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a journal and fsync it (a crash can cut only this last line).

    OS errors become one-line `UserError`s naming the file; the lines already there stay.
    """
    path = os.fspath(path)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a") as f:
            f.write(line.rstrip("\n") + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise UserError(write_error_message(e, path, f"the earlier lines of {path} are intact")) from None


def _write_temp(folder: str, write_fn: Callable[[IO], None], binary: bool, permissions: int) -> str:
    """A complete, fsync'ed temporary file in `folder` holding what `write_fn` wrote; its path."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, permissions)      # mkstemp makes it private; results are meant to be shared
    except BaseException:
        _remove_quietly(tmp)
        raise
    return tmp


def fsync_folder(folder: str) -> None:
    """fsync a directory, so a rename inside it is durable (a no-op where the OS cannot)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return                          # e.g. Windows: directories cannot be opened
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass                            # already gone, or the folder went away


def _intact_note(path: str, intact: str | Callable[[], str] | None) -> str:
    if callable(intact):
        return intact()
    if intact is not None:
        return intact
    return f"{path} is unchanged" if os.path.exists(path) else f"{path} was not created"


def write_error_message(error: OSError, path: str, intact: str = "") -> str:
    """One line: what went wrong writing `path`, in words, then what is still intact."""
    code, reason = error.errno, error.strerror or str(error)
    folder = os.path.dirname(os.path.abspath(path))
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        what = f"disk full writing {path} ({reason})"
    elif code == errno.EROFS:
        what = f"cannot write {path}: read-only file system"
    elif code in (errno.EACCES, errno.EPERM):
        what = f"cannot write {path}: no permission to write in {folder}"
    elif code in (errno.ENOENT, errno.ENOTDIR, errno.EEXIST) and not os.path.isdir(folder):
        what = f"cannot write {path}: {_missing_folder(folder)}"
    else:
        where = f" ({error.filename})" if error.filename and error.filename != path else ""
        what = f"cannot write {path}: {reason}{where}"
    return f"{what}; {intact}" if intact else what


def remove_stale_temps(folder: str) -> list[str]:
    """Delete temporary files that a killed writer left in `folder`; their names.

    Only safe for the holder of the folder's lock (`enas.runlock`): nobody else writes there.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if name.startswith(TEMP_PREFIX):
            _remove_quietly(os.path.join(folder, name))
            removed.append(name)
    return removed


def _missing_folder(folder: str) -> str:
    """Why `folder` is not there: a file stands in its path, or it does not exist."""
    part = folder
    while part and not os.path.exists(part):
        parent = os.path.dirname(part)
        if parent == part:
            break
        part = parent
    if part and os.path.exists(part) and not os.path.isdir(part):
        return f"{part} is a file, not a folder"
    return f"folder {folder} does not exist (moved or deleted?)"
