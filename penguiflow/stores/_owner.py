"""One owner per journal file: an OS file lock beside the SQLite file.

A durable flow claims its journal at ``run()`` and lets go at ``stop()``. Two
flows working one journal at once would both put its entries back and handle
them twice, so the second is refused with ``JournalInUse``. The lock is an
``flock`` on ``<file>-owner``: the operating system drops it when its process
dies, a kill -9 included, so a restarted process claims the file at once. A
second claim from the same process (another flow, another store object on the
same file) is refused too: each claim opens the file anew, and ``flock`` locks
belong to the open file. Where ``fcntl`` is missing (Windows) nothing is locked.
"""

from __future__ import annotations

import os

from penguiflow.errors import JournalInUse

try:
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms CI runs
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileOwner"]


class FileOwner:
    """The claim of one journal file; ``claim``/``release`` pair up, not nested."""

    __slots__ = ("_fd", "_path")

    def __init__(self, path: str) -> None:
        self._path = f"{path}-owner"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between a successful ``claim`` and ``release``."""
        return self._fd is not None

    def claim(self, journal: str) -> None:
        """Own the file, or raise ``JournalInUse`` naming the owner's pid if known.

        The caller (``SQLiteJournal.claim``) never claims twice without a release.
        """
        if fcntl is None:  # pragma: no cover
            return
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise JournalInUse(
                f"journal {journal!r} is owned by another running durable flow"
                f"{f' ({owner})' if owner else ''}; one flow works a journal at a time",
                owner=owner,
                path=journal,
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go of the file (no-op if not held)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the file drops its flock


def _read_owner(fd: int) -> str | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:  # pragma: no cover - the file was just opened read-write
        return None
    return text or None
