"""One exception hierarchy; the CLI maps it to exit codes in one place (cli.main)."""

from __future__ import annotations


class TvaultError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""

    exit_code = 1


class NotARepository(TvaultError):
    exit_code = 2


class NoCommits(TvaultError):
    exit_code = 2


class InvalidInput(TvaultError):
    """Bad arguments to log_all or the CLI (model, result, tags, names...)."""

    exit_code = 2


class RefNotFound(TvaultError):
    exit_code = 3


class AmbiguousRef(TvaultError):
    exit_code = 3


class CorruptEntry(TvaultError):
    """Stored data fails validation: wrong size, bad checksum, malformed manifest."""

    exit_code = 4


class UnsupportedFormat(TvaultError):
    """The registry was written by a newer, incompatible format version."""

    exit_code = 5


class RemoteError(TvaultError):
    exit_code = 6


class StorageError(TvaultError):
    """The repository could not be written (disk full, read-only, permissions); nothing was recorded."""

    exit_code = 7


class CaptureWarning(UserWarning):
    """``log_all`` could not capture part of the model's code (missing source, code edited after import).

    A warning, not an error: the entry is logged and says what is missing. Filter it with
    ``warnings.filterwarnings("ignore", category=tvault_git.CaptureWarning)``.
    """
