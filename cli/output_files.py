"""Output files named on the command line are claimed before any work, so a run never ends in a write error.

``os.access`` answers for the permission bits only: it says yes for ``/proc/x.csv``, for a read-only file system
and for a full directory quota. The only real answer is to open the file the way the command will write it.
"""

from __future__ import annotations

from pathlib import Path

from cli.main import BadInput


def cannot_write(option: str, path: Path, error: OSError) -> BadInput:
    return BadInput(f"{option} {path}: cannot write there ({error.strerror or error})")


def check_writable(path: Path | None, option: str) -> None:
    """Refuse (exit 2) an output PATH that cannot be opened for writing; leave the file system as it was.

    An existing file is opened for appending (nothing truncated yet); a missing one is created and removed again.
    """
    if path is None:
        return
    existed = path.exists() or path.is_symlink()
    try:
        with path.open("a" if existed else "x", encoding="utf-8"):
            pass
    except OSError as error:
        raise cannot_write(option, path, error) from None
    if not existed:
        path.unlink(missing_ok=True)
