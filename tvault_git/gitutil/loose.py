"""Loose blobs written by tvault itself, as git writes them, for the one blob that grows with the registry.

A commit's note (FORMAT.md, The note index) is one blob rewritten whole by every ``log_all`` on
that commit: 390 KB at 2,000 entries. libgit2 deflates a loose object with stock zlib and hashes
it with the collision-detecting SHA-1: ~5 ms for that note, the part of ``log_all`` that grew with
the entries (bench/bench_log_growth.py). Here it costs little more than its SHA-1: OpenSSL's SHA-1
(the id of bytes we made ourselves; collision detection guards against crafted input, not our own
text), and zlib-ng at level 1 (git's own ``core.looseCompression`` default) over only what is new.

Why that works: a deflate stream is a sequence of blocks, and a block compressed by a fresh
compressor never refers back to earlier bytes. So a blob is written as the zlib header, the object
header (``blob <size>\0``) deflated alone, then the text in pieces of ``PIECE`` bytes, each deflated
alone and ended by a sync flush (byte-aligned, not final), the last piece with the final block,
then the Adler-32 of everything. A note that grows by one line keeps every whole piece of the text
before it: those compressed bytes are reused (held per process, ``_pieces``), and only the header
and the last partial piece are deflated again (whole pieces once, at git's default level). Any zlib reader (git, libgit2) reads the result as
it reads its own objects.

The file is what git and libgit2 write: ``objects/xx/<38 hex>``, a zlib stream of
``blob <size>\\0<bytes>``, mode 0444 less the umask (``shared_umask`` lets a shared repository's
group bits through), installed by a hard link from a temp file so no reader ever sees half an
object. A concurrent ``git prune`` may rmdir the empty fan-out directory between our mkdir and
link: the directory is made again and the link retried.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets

import pygit2

from tvault_git.gitutil.repo import common_dir

try:
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - zlib-ng is a dependency; stock zlib writes the same format
    import zlib as _zlib  # type: ignore[no-redef]

LEVEL = 1  # what is deflated on every write: git's core.looseCompression default (Z_BEST_SPEED)
PIECE_LEVEL = 6  # a whole piece, deflated once and reused: git's core.compression default (~30% smaller)
PIECE = 32 << 10  # text bytes per independently deflated piece (~1% larger than one stream)
_TRIES = 5
TMP_PREFIX = "tmp_obj_tvault_"  # git prune removes stale tmp_* files in objects/ (a killed writer's)


def blob_id(data: bytes) -> str:
    """The git id of a blob holding ``data``."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def write_blob(repo: pygit2.Repository, data: bytes) -> pygit2.Oid:
    """Store ``data`` as a loose blob (unless that object is loose already: then it is freshened,
    as git does, so a prune that runs next does not take it for old garbage); returns its id."""
    hexid = blob_id(data)
    objects = os.path.join(common_dir(repo), "objects")
    fan = os.path.join(objects, hexid[:2])
    final = os.path.join(fan, hexid[2:])
    try:
        os.utime(final)
        return pygit2.Oid(hex=hexid)
    except (FileNotFoundError, PermissionError):
        pass  # not there, or a teammate's file we cannot touch (git writes it again, as here)
    body = _deflated(b"blob %d\0" % len(data), data)
    tmp = os.path.join(objects, TMP_PREFIX + secrets.token_hex(8))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        for attempt in range(_TRIES):
            try:
                os.mkdir(fan, 0o777)
            except FileExistsError:
                pass
            try:
                os.link(tmp, final)
                break
            except FileExistsError:
                break  # a twin writer stored the same bytes first
            except FileNotFoundError:
                if attempt == _TRIES - 1:
                    raise  # pruned every time: not a race any more
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
                    raise
                os.replace(tmp, final)  # no hard links here (like git's finalize_object_file)
                break
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return pygit2.Oid(hex=hexid)


def _deflate(data: bytes | memoryview, final: bool, level: int = LEVEL) -> bytes:
    """Raw deflate blocks of ``data`` alone (they refer to no byte before it)."""
    c = _zlib.compressobj(level, _zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(_zlib.Z_FINISH if final else _zlib.Z_SYNC_FLUSH)


def _deflated(header: bytes, data: bytes) -> bytes:
    """The zlib stream of ``header + data``, reusing the deflated whole pieces of a remembered
    earlier text that ``data`` starts with (see the module docstring)."""
    done, pieces = 0, []
    for prefix, held in _pieces:
        if len(prefix) > done and data.startswith(prefix):
            done, pieces = len(prefix), held
    view = memoryview(data)
    if len(data) - done > PIECE:  # freeze the whole pieces this text adds
        pieces = list(pieces)
        while len(data) - done > PIECE:
            pieces.append(_deflate(view[done : done + PIECE], final=False, level=PIECE_LEVEL))
            done += PIECE
        _remember(data[:done], pieces)
    out = [b"\x78\x01", _deflate(header, final=False), *pieces, _deflate(view[done:], final=True)]
    out.append(_zlib.adler32(data, _zlib.adler32(header)).to_bytes(4, "big"))
    return b"".join(out)


def _remember(prefix: bytes, pieces: list[bytes]) -> None:
    _pieces.append((prefix, pieces))
    while len(_pieces) > _PIECES_HELD:
        _pieces.pop(0)  # oldest first


# Deflated pieces of recently written texts: (text prefix, its pieces). A few notes at a time are
# being appended to (one per commit logged on); at most _PIECES_HELD x 16 MiB (the note limit).
_pieces: list[tuple[bytes, list[bytes]]] = []
_PIECES_HELD = 4
