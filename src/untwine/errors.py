"""The one exception type for user mistakes: the CLI prints it as one line and exits 2."""

from __future__ import annotations

import errno

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "a name in the path is too long (255 bytes at most)",
    errno.EEXIST: "a file of that name is in the way, where a folder must go",
    errno.ELOOP: "a link that loops back on itself",
}


class UntwineError(ValueError):
    """a wrong name, value, path or file; the message says what is accepted."""


class UntwineWarning(UserWarning):
    """something the user should know that does not stop the work (e.g. skipped files)."""


def os_error_message(error: OSError, path: object = None) -> str:
    """One line for a failed file operation: the path, then what the system said in words."""
    where = path if path is not None else error.filename
    return f"{where}: {os_error_reason(error)}" if where is not None else os_error_reason(error)


def os_error_reason(error: OSError) -> str:
    """What the system said, in words a user acts on (the disk is full, not errno 28)."""
    return _REASONS.get(error.errno or 0, error.strerror or str(error))
