"""Writing files so that a kill leaves the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from untwine.errors import UntwineError, os_error_message


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a kill leaves old or new.

    A failed write (disk full, read-only, a folder in the way) removes its temporary file and
    is a one-line error naming `path`.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise UntwineError(f"cannot write {os_error_message(error, path)}") from None
        raise
