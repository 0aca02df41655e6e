"""`ResultsStore`: the SQLite results database (stdlib sqlite3, WAL mode).

Tables:
  points        one row per sweep point, keyed by `point_id`: the columns of `projlib.schema`,
                including the store's bookkeeping (claimed_by = "host:pid" of the runner,
                attempts = times claimed).
  sweeps        one row per distinct sweep (sweep_id, config_json, created_at).
  sweep_points  which points belong to which sweep, in expansion order.

Identity and versions: the file carries SQLite's `application_id` (APPLICATION_ID) and its
`user_version` is the schema version (SCHEMA_VERSION). A file without them is accepted only when
it has exactly the tables of the first, unversioned greenbench layout (schema version 1): readers
read it as is, a writer migrates it in place (new nullable columns, then the two pragmas). Any
other SQLite file, an empty file, or a file from a newer greenbench is refused with `StoreError`
before anything is written; read-only stores (`read_only=True`) never write a byte, and a
writable store creates its schema only in a file that did not exist.

Concurrency: every write is a short `BEGIN IMMEDIATE` transaction, which takes SQLite's write
lock up front, so "find a pending point and mark it running" is atomic across processes: two
runners on one file can never claim the same point. WAL lets readers (`greenbench runs`) proceed
while a sweep writes; busy_timeout makes writers wait for the lock instead of failing.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from projlib import schema

__all__ = [
    "APPLICATION_ID", "SCHEMA_VERSION", "STATUSES", "ResultsStore",
    "StoreError", "owner_token",
]

# "GrnB": marks an SQLite file as a greenbench results db (PRAGMA application_id).
APPLICATION_ID = 0x47726E42
#: The db file and the files SQLite keeps beside it ("" = the db itself).
SIDE_FILES: tuple[str, ...] = ("", "-wal", "-shm", "-journal")
# The tables and the columns that identify a version-1 greenbench db (a migration source): a
# signature, deliberately a subset of the version-1 columns of `projlib.schema`.
_V1_TABLES = {"points", "sweeps", "sweep_points"}
_V1_POINT_COLUMNS = {"point_id", "status", "error", "dataset", "model", "procedure", "constraint",
                     "radius", "seed", "epochs", "config_json", "test_accuracy", "claimed_by",
                     "attempts"}

# The row schema lives in `projlib.schema` (its columns are read from there when the store
# runs); None in Python <-> NULL in SQL <-> "not measured".
STATUSES: tuple[str, ...] = schema.STATUSES
SCHEMA_VERSION = schema.SCHEMA_VERSION


class StoreError(ValueError):
    """The database file cannot be opened or is not a greenbench results store."""


def owner_token() -> str:
    """'host:pid' of this process, recorded on the points it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_dead(owner: str | None) -> bool:
    # Only a runner on this host can be checked; a remote owner is presumed alive.
    if not owner or ":" not in owner:
        return True
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _full_row(row: sqlite3.Row) -> dict[str, Any]:
    # A version-1 file read as is lacks the newer columns: they read as not measured.
    return dict(dict.fromkeys(schema.column_names()), **dict(row))


def _q(name: str) -> str:
    # "constraint" is an SQL keyword; quote every identifier the same way.
    return f'"{name}"'


class ResultsStore:
    """SQLite results store. Use as a context manager or call `close()`.

    Raises:
        StoreError: when `path` cannot be opened or holds something that is not a results db.
    """

    def __init__(
        self, path: str | Path, busy_timeout_s: float = 60.0, *, read_only: bool = False
    ) -> None:
        if busy_timeout_s <= 0:
            raise ValueError(f"busy_timeout_s must be > 0, got {busy_timeout_s}")
        self.path = Path(path)
        self.read_only = read_only
        self._conn: sqlite3.Connection | None = None
        if self.path.is_dir():
            raise StoreError(f"db: {self.path} is a directory, not a database file")
        if not read_only and not self.path.exists():
            self._create_file(busy_timeout_s)
        existed = self.path.exists()
        if read_only and not existed:
            raise StoreError(f"db: {self.path} does not exist (run `greenbench run` first)")
        if existed and not self.path.is_file():
            raise StoreError(f"db: {self.path} is not a regular file")
        if existed and self.path.stat().st_size == 0:
            raise StoreError(
                f"db: {self.path} is an empty file, not a greenbench results database; "
                "remove it or choose another path"
            )
        self._busy_timeout_s = busy_timeout_s
        self._snapshot: tuple[int, ...] | None = None
        try:
            if read_only:
                self._connect_read_only()
            else:
                # isolation_level=None: autocommit, every transaction is an explicit BEGIN.
                self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s,
                                             isolation_level=None)
                self._conn.row_factory = sqlite3.Row
                self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            version = self._check_file(existed)
            if not read_only:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                if version < SCHEMA_VERSION:
                    self._create_schema()
        except sqlite3.DatabaseError as exc:
            self.close()
            wal = Path(f"{self.path}-wal")
            if read_only and wal.exists() and not os.access(self.path.parent, os.W_OK):
                raise StoreError(
                    f"db: cannot read {self.path}: its write-ahead log {wal.name} holds changes "
                    f"not yet in the db, and SQLite needs write access to {self.path.parent} to "
                    "read them; copy the db with its -wal file to a writable folder"
                ) from exc
            raise StoreError(f"db: cannot use {self.path} as a results database: {exc}") from exc
        except StoreError:
            self.close()
            raise

    # ------------------------------------------------------------------ reading without writing
    # A reader must never create a file, and must read where it cannot write (read-only
    # media). A plain `mode=ro` connection to a WAL-mode file creates its -wal and -shm side
    # files and leaves them behind, and fails where the folder is read-only. So, when no -wal
    # file exists (no writer has the db open, nothing is waiting in a log), the file is opened
    # `immutable=1`: no lock, no side file, the main file read as it is. Immutable means
    # SQLite trusts the file not to change; `_read` checks that it did not (same inode, size
    # and mtime, still no -wal) after every query and otherwise reopens as an ordinary
    # read-only reader (which reads a writer's log, as WAL readers do) and reads again.

    def _file_state(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        wal = os.path.lexists(f"{self.path}-wal")
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, int(wal))

    def _connect_read_only(self, immutable: bool | None = None) -> None:
        if self._conn is not None:
            self._conn.close()
        state = self._file_state()
        if immutable is None:
            immutable = state is not None and not state[-1]
        self._snapshot = state if immutable else None
        uri = f"{self.path.resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"
        self._conn = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout_s,
                                     isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a query; for an immutable reader, again as an ordinary reader when the file
        changed while it read (a torn read may also raise: the same retry)."""
        try:
            rows = self._conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError:
            if self._snapshot is None or self._file_state() == self._snapshot:
                raise
        else:
            if self._snapshot is None or self._file_state() == self._snapshot:
                return rows
        self._connect_read_only(immutable=False)
        return self._conn.execute(sql, args).fetchall()

    def _create_file(self, busy_timeout_s: float) -> None:
        # Built aside and linked into place: os.link fails if the name exists, so of two
        # processes creating the same db one wins and the other opens the winner's complete
        # file; nobody ever sees a half-made (empty) db under the real name.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.new")
        try:
            conn = sqlite3.connect(tmp, timeout=busy_timeout_s, isolation_level=None)
            conn.row_factory = sqlite3.Row
            try:
                self._conn = conn
                self._create_schema()
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                conn.close()
                self._conn = None
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"db: cannot create {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"db: cannot create {self.path}: {exc.strerror or exc}") from exc
        finally:
            for suffix in SIDE_FILES:
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)

    def _check_file(self, existed: bool) -> int:
        """Schema version of the open file (0 = new, empty); StoreError for anything that is
        not a greenbench db. Reads only."""
        conn = self._conn
        assert conn is not None
        app_id = self._read("PRAGMA application_id")[0][0]
        version = self._read("PRAGMA user_version")[0][0]
        conn = self._conn  # _read may have reopened it
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"db: {self.path} has schema version {version}, written by a newer "
                    f"greenbench (this one reads up to {SCHEMA_VERSION}); upgrade greenbench"
                )
        elif app_id != 0:
            raise StoreError(
                f"db: {self.path} is an SQLite file of another application "
                f"(application_id {app_id:#x}), not a greenbench results database"
            )
        elif not tables and not existed:
            version = 0  # a new file: the schema is created below
        elif _V1_TABLES <= tables and _V1_POINT_COLUMNS <= {
            r[1] for r in conn.execute("PRAGMA table_info(points)")
        }:
            version = 1
        else:
            what = f"tables {', '.join(sorted(tables))}" if tables else "no tables"
            raise StoreError(
                f"db: {self.path} is not a greenbench results database ({what}); "
                "choose another --db"
            )
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"db: {self.path} is corrupt (sqlite quick_check: {check})")
        self.schema_version = version
        return version

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _create_schema(self) -> None:
        columns = schema.sql_columns()
        cols = ", ".join(f"{_q(n)} {t}" for n, t in columns)
        with self._write() as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS points ({cols})")
            c.execute(
                "CREATE TABLE IF NOT EXISTS sweeps (sweep_id TEXT PRIMARY KEY, "
                "config_json TEXT NOT NULL, created_at TEXT NOT NULL)"
            )
            c.execute(
                "CREATE TABLE IF NOT EXISTS sweep_points (sweep_id TEXT NOT NULL, "
                "point_id TEXT NOT NULL, ordinal INTEGER NOT NULL, "
                "PRIMARY KEY (sweep_id, point_id))"
            )
            # A version-1 store gains the newer columns (all nullable): the migration.
            have = {r["name"] for r in c.execute("PRAGMA table_info(points)")}
            for name, sql_type in columns:
                if name not in have:
                    c.execute(f"ALTER TABLE points ADD COLUMN {_q(name)} {sql_type}")
            c.execute(f"PRAGMA application_id={APPLICATION_ID}")
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self.schema_version = SCHEMA_VERSION

    # ------------------------------------------------------------------ sweeps
    def register_sweep(
        self, sweep_id: str, sweep_config: dict[str, Any], points: Sequence[tuple[str, dict]]
    ) -> int:
        """Record a sweep and its points (point_id, canonical config dict); existing points keep
        their status and results. Returns the number of points newly inserted."""
        now = _now()
        inserted = 0
        with self._write() as c:
            c.execute(
                "INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?)",
                (sweep_id, json.dumps(sweep_config, sort_keys=True), now),
            )
            config_columns = schema.config_columns()
            names = ("point_id", "status", *config_columns, "config_json")
            for ordinal, (pid, cfg) in enumerate(points):
                values = [pid, "pending"] + [cfg.get(k) for k in config_columns]
                values.append(json.dumps(cfg, sort_keys=True))
                cur = c.execute(
                    f"INSERT OR IGNORE INTO points ({', '.join(map(_q, names))}) "
                    f"VALUES ({', '.join('?' * len(names))})",
                    values,
                )
                inserted += cur.rowcount
                c.execute(
                    "INSERT OR IGNORE INTO sweep_points VALUES (?, ?, ?)", (sweep_id, pid, ordinal)
                )
        return inserted

    def requeue(self, sweep_id: str, retry_failed: bool = True) -> int:
        """Make the sweep's unfinished points runnable again: interrupted (and failed, unless
        `retry_failed` is False) -> pending, and running points whose owner process on this
        host is gone (a crashed runner) -> pending. Returns how many were requeued."""
        statuses = ["interrupted"] + (["failed"] if retry_failed else [])
        with self._write() as c:
            ids = [
                r["point_id"]
                for r in c.execute(
                    "SELECT p.point_id, p.status, p.claimed_by FROM points p JOIN sweep_points s "
                    "ON p.point_id = s.point_id WHERE s.sweep_id = ?",
                    (sweep_id,),
                )
                if r["status"] in statuses
                or (r["status"] == "running" and _owner_dead(r["claimed_by"]))
            ]
            for pid in ids:
                c.execute(
                    "UPDATE points SET status='pending', claimed_by=NULL WHERE point_id=?", (pid,)
                )
        return len(ids)

    # ------------------------------------------------------------------ point lifecycle
    def claim(self, sweep_id: str, owner: str | None = None) -> str | None:
        """Atomically take the sweep's next pending point (expansion order) and mark it running.
        Returns its point_id, or None when no pending point is left."""
        owner = owner or owner_token()
        with self._write() as c:
            row = c.execute(
                "SELECT p.point_id FROM points p JOIN sweep_points s ON p.point_id = s.point_id "
                "WHERE s.sweep_id = ? AND p.status = 'pending' ORDER BY s.ordinal LIMIT 1",
                (sweep_id,),
            ).fetchone()
            if row is None:
                return None
            # The WHERE status='pending' is belt and braces: the write lock is already held.
            cur = c.execute(
                "UPDATE points SET status='running', claimed_by=?, started_at=?, "
                "finished_at=NULL, error=NULL, attempts=attempts+1 "
                "WHERE point_id=? AND status='pending'",
                (owner, _now(), row["point_id"]),
            )
            return row["point_id"] if cur.rowcount == 1 else None

    def complete(self, point_id: str, metrics: dict[str, Any]) -> None:
        """Store a finished point's measurements (keys from `schema.metric_columns()`) and mark
        it done."""
        unknown = set(metrics) - set(schema.metric_columns())
        if unknown:
            raise ValueError(f"metrics: unknown columns {sorted(unknown)}")
        sets = ", ".join(f"{_q(k)}=?" for k in metrics)
        with self._write() as c:
            c.execute(
                f"UPDATE points SET {sets}{', ' if sets else ''}status='done', error=NULL, "
                "finished_at=? WHERE point_id=?",
                [*metrics.values(), _now(), point_id],
            )

    def fail(self, point_id: str, error: str) -> None:
        """Mark a point failed with its error text."""
        self._finish(point_id, "failed", error)

    def interrupt(self, point_ids: Iterable[str]) -> None:
        """Mark in-flight points interrupted (Ctrl-C)."""
        for pid in point_ids:
            self._finish(pid, "interrupted", "interrupted by the user (SIGINT)")

    def _finish(self, point_id: str, status: str, error: str) -> None:
        with self._write() as c:
            c.execute(
                "UPDATE points SET status=?, error=?, finished_at=? WHERE point_id=?",
                (status, error, _now(), point_id),
            )

    # ------------------------------------------------------------------ reading
    def rows(self, status: str | None = None, sweep_id: str | None = None) -> list[dict[str, Any]]:
        """All points as dicts (schema columns), optionally filtered by status and sweep."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        sql = "SELECT p.* FROM points p"
        args: list[Any] = []
        where: list[str] = []
        if sweep_id is not None:
            sql += " JOIN sweep_points s ON p.point_id = s.point_id"
            where.append("s.sweep_id = ?")
            args.append(sweep_id)
        if status is not None:
            where.append("p.status = ?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY p.dataset, p.model, p.procedure, p.\"constraint\", p.radius, p.seed"
        return [_full_row(r) for r in self._read(sql, args)]

    def get(self, point_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM points WHERE point_id=?", (point_id,))
        return _full_row(rows[0]) if rows else None

    def counts(self, sweep_id: str | None = None) -> dict[str, int]:
        """Number of points per status (every status present as a key)."""
        out = dict.fromkeys(STATUSES, 0)
        for r in self.rows(sweep_id=sweep_id):
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out

    def sweeps(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._read("SELECT * FROM sweeps ORDER BY created_at")]
