"""The path rules every command shares: which names are usable at all, what an output may
replace, how a file is written, and how values are echoed in a one-line error.

One place per rule, so `run --db/--report`, `report -o`, `summary -o`, `runs --db` and a
sweep file all behave the same way:

* `path_problem`: a name the system cannot take (a component over NAME_MAX bytes, a path over
  PATH_MAX) or that is not UTF-8 (it could not be written into a report or a db) is refused
  before anything reads or writes it.
* `is_db_file`: the results db is recognised by name (and its -wal/-shm/-journal side files)
  and by identity (st_dev, st_ino), so a hard link or a symbolic link to it is the db too.
* `write_atomically`: text is written to a temporary file in the target's directory and
  renamed over the target; whatever goes wrong, the temporary file is removed and the old
  target is untouched.
* `shown`: a user's value echoed in an error, cut to a bounded length.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from projlib.sweep.store import SIDE_FILES

__all__ = ["is_db_file", "path_problem", "shown", "write_atomically"]

_NAME_MAX = 255  # bytes per path component (Linux, macOS, Windows filesystems)
_PATH_MAX = 4096
_SHOWN_MAX = 80


def shown(value: object, limit: int = _SHOWN_MAX) -> str:
    """repr(value) cut to about `limit` characters (a 10 MB string must not become a 10 MB
    error line)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be used as a file name here, or None. Touches nothing."""
    text = os.fspath(path)
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        # On Linux undecodable bytes arrive as lone surrogates (surrogateescape): the file
        # can exist, but its name cannot be written into a report, a db or a terminal.
        return f"the name {shown(text)} is not valid UTF-8; rename the file"
    if len(raw) >= _PATH_MAX:
        return f"the path is too long ({len(raw):,} bytes; at most {_PATH_MAX - 1:,})"
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > _NAME_MAX:
        return (f"a file name is too long ({len(longest):,} bytes, {shown(longest.decode())}; "
                f"at most {_NAME_MAX})")
    return None


def is_db_file(target: Path, db: Path) -> bool:
    """True when `target` is the db at `db` or one of its side files: by name, or by
    (st_dev, st_ino) through hard and symbolic links."""
    db_name = db.resolve()
    if target.resolve() in {Path(f"{db_name}{s}") for s in SIDE_FILES}:
        return True
    try:
        st = os.stat(target)
    except OSError:
        return False
    for suffix in SIDE_FILES:
        try:
            other = os.stat(f"{db}{suffix}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino):
            return True
    return False


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path`: a temporary file in the same directory, then
    `os.replace`. Two writers finishing together never interleave bytes, a reader never sees
    half a file, and any failure (OSError, an interrupt) leaves the old file and no temporary
    one. Raises OSError."""
    text.encode("utf-8")  # before anything is created: an encoding error writes nothing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name[:200]}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        raise
