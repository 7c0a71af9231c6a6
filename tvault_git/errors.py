"""One exception hierarchy; the CLI maps it to exit codes in one place (``tvault_git.cli.main``).

Every error raised on purpose is a subclass with its own exit code; the bare base is never raised
(its code is the "internal error" one). Exit 1 is reserved for "no match" (``find --exit-code``),
as grep and ``git diff --exit-code`` use it. Fields (``ref``, ``remote``, ``entry``...) carry the
data a caller or a test branches on, so nobody has to parse the message.
"""

from __future__ import annotations

#: ``find --exit-code`` found nothing (not an error).
EXIT_NO_MATCH = 1
#: An unexpected exception: a bug (EX_SOFTWARE from sysexits.h).
EXIT_INTERNAL = 70


class TvaultError(Exception):
    """A user-facing error: the message says what is wrong and what to do. Raise a subclass."""

    exit_code = EXIT_INTERNAL


class NotARepository(TvaultError):
    exit_code = 2


class NoCommits(TvaultError):
    exit_code = 2


class InvalidInput(TvaultError):
    """Bad arguments to log_all or the CLI (model, result, tags, names...)."""

    exit_code = 2


class CheckpointRefused(InvalidInput):
    """``git tvault import`` refused ``path``: not a state_dict of tensors that loads without running
    code (a pickled class or model, a non-tensor value, a damaged or hostile file). Nothing was written."""

    exit_code = 11

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class RefNotFound(TvaultError):
    """``ref`` (an entry ref, a name@version, a revision) names nothing here."""

    exit_code = 3

    def __init__(self, message: str, *, ref: str | None = None) -> None:
        super().__init__(message)
        self.ref = ref


class AmbiguousRef(TvaultError):
    exit_code = 3

    def __init__(self, message: str, *, ref: str | None = None) -> None:
        super().__init__(message)
        self.ref = ref


class CorruptEntry(TvaultError):
    """Stored data fails validation: wrong size, bad checksum, malformed manifest."""

    exit_code = 4

    def __init__(self, message: str, *, entry: str | None = None, tensor: str | None = None) -> None:
        super().__init__(message)
        self.entry = entry
        self.tensor = tensor


class UnsupportedFormat(TvaultError):
    """The registry was written by a newer, incompatible format version."""

    exit_code = 5


class RemoteError(TvaultError):
    """Talking to ``remote`` failed (unreachable, not a repository, rejected)."""

    exit_code = 6

    def __init__(self, message: str, *, remote: str | None = None) -> None:
        super().__init__(message)
        self.remote = remote


class StorageError(TvaultError):
    """The repository (or an export's output file) could not be written: disk full, read-only,
    permissions. Nothing was recorded."""

    exit_code = 7


class LockTimeout(TvaultError):
    """Another writer held ``ref`` (or left its lock behind) for longer than the retry timeout."""

    exit_code = 8

    def __init__(self, message: str, *, ref: str | None = None) -> None:
        super().__init__(message)
        self.ref = ref


class GitCommandError(TvaultError):
    """A ``git`` subprocess failed: ``args`` (without "git"), its ``returncode`` and ``stderr``."""

    exit_code = 9

    def __init__(self, message: str, *, args: tuple[str, ...] = (), returncode: int = 0, stderr: str = "") -> None:
        super().__init__(message)
        self.git_args = args
        self.returncode = returncode
        self.stderr = stderr


class InstallationError(TvaultError):
    """tvault-git itself is incomplete (a missing optional dependency, missing package data)."""

    exit_code = 10


#: exit status -> meaning, for ``git tvault --help`` and docs/cli.md (one table).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (EXIT_NO_MATCH, "find --exit-code matched nothing"),
    (2, "bad input: not a repository, no commits, invalid arguments (InvalidInput, NotARepository, NoCommits)"),
    (3, "no such entry, version or revision, or an ambiguous one (RefNotFound, AmbiguousRef)"),
    (4, "stored data failed validation (CorruptEntry)"),
    (5, "written by a newer, incompatible format (UnsupportedFormat)"),
    (6, "a remote could not be reached, read or written (RemoteError)"),
    (7, "the repository or an output file could not be written: disk full, read-only (StorageError)"),
    (8, "a ref stayed locked by another writer (LockTimeout)"),
    (9, "a git command failed (GitCommandError)"),
    (10, "tvault-git is installed incompletely: missing extra or package data (InstallationError)"),
    (11, "a checkpoint was refused by import: not a plain state_dict of tensors (CheckpointRefused)"),
    (EXIT_INTERNAL, "internal error: a bug (set TVAULT_DEBUG=1 for the traceback)"),
    (130, "interrupted"),
)


class CaptureWarning(UserWarning):
    """``log_all`` could not capture part of the model's code (missing source, code edited after import).

    A warning, not an error: the entry is logged and says what is missing. Filter it with
    ``warnings.filterwarnings("ignore", category=tvault_git.CaptureWarning)``.
    """
