"""The SQLite file itself, before it is opened as a turns.db: what kind of file a path is, its
100-byte header, its WAL mode, and whether SQLite can read it.

The migration, the ``check`` command and the report all ask these questions here, so they agree.
Nothing here writes: the one connection opened is read-only.
"""

import os
import sqlite3
import stat
import urllib.parse
from typing import Optional

HEADER_SIZE = 100
MAGIC = b"SQLite format 3\x00"

KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_kind(path: str) -> Optional[str]:
    """What ``path`` is when it exists but is no regular file ("a directory", "a FIFO (named
    pipe)", ...), else None. Reading a FIFO or a device can block for ever: ask before opening."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in KINDS if test(mode)), "not a regular file")


def read_header(path: str) -> bytes:
    """The first 100 bytes of a regular file (fewer when it is shorter)."""
    with open(path, "rb") as f:
        return f.read(HEADER_SIZE)


def is_sqlite_header(header: bytes) -> bool:
    return len(header) == HEADER_SIZE and header.startswith(MAGIC)


def declared_size(header: bytes) -> Optional[int]:
    """The database size in bytes the header states, or None when it states none it vouches
    for (a zero page count, or a count older than the file's last change)."""
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if not pages or header[24:28] != header[92:96]:
        return None
    return pages * page_size


def is_wal(path: Optional[str]) -> bool:
    """True when the header of the regular file at ``path`` says WAL mode (bytes 18 and 19 are 2)."""
    if not path or special_kind(path) is not None:
        return False
    try:
        header = read_header(path)
    except OSError:
        return False
    return len(header) >= 20 and header[18] == 2 and header[19] == 2


def wal_has_content(path: str) -> bool:
    """True when ``path``-wal exists and is not empty: changes not yet checkpointed into ``path``."""
    wal = f"{path}-wal"
    return os.path.isfile(wal) and os.path.getsize(wal) > 0


def uri(path: str, mode: str = "ro", *options: str) -> str:
    """The SQLite URI that opens the file at ``path`` in ``mode`` (``ro``, or ``rw`` for the
    migration), with ``options`` such as ``immutable=1``: the one way every module opens a file."""
    query = "&".join((f"mode={mode}",) + options)
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?{query}"


def read_only_uri(path: str, immutable: bool = False) -> str:
    """``uri`` read-only; ``immutable``: as Datasette opens a file served with ``-i``."""
    return uri(path, "ro", *(("immutable=1",) if immutable else ()))


def unreadable(path: str, busy_timeout_s: float = 5.0) -> Optional[str]:
    """SQLite's own answer: None when a read-only connection reads the schema and
    ``PRAGMA quick_check`` says ok (a WAL file's committed pages included), else SQLite's words.
    Also None when SQLite cannot tell (the file is locked, or a hot journal needs a writer).
    An existing -shm index is opened read-only, so asking changes no byte beside the file."""
    options = ("readonly_shm=1",) if os.path.exists(f"{path}-shm") else ()
    try:
        conn = sqlite3.connect(uri(path, "ro", *options), uri=True, timeout=busy_timeout_s)
    except sqlite3.DatabaseError as error:
        return str(error)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        found = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.OperationalError as error:
        if any(word in str(error) for word in ("locked", "busy", "readonly")):
            return None
        return str(error)
    except sqlite3.DatabaseError as error:
        return str(error)
    finally:
        conn.close()
    if found == ["ok"]:
        return None
    return "quick_check: " + "; ".join(" ".join(str(line).split()) for line in found)


def truncation(path: str, header: bytes, busy_timeout_s: float = 5.0) -> Optional[str]:
    """None, or how the file is truncated: shorter than its header states *and* unreadable to
    SQLite. The size alone proves nothing: a WAL store's file is legitimately shorter than its
    header while a checkpoint is under way or was interrupted (its pages are still in the -wal)."""
    declared = declared_size(header)
    size = os.path.getsize(path)
    if declared is None or size >= declared:
        return None
    reason = unreadable(path, busy_timeout_s)
    if reason is None:
        return None
    return f"truncated: the header declares {declared:,} bytes, the file has {size:,} (SQLite: {reason})"
