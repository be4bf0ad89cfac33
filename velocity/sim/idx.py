"""The IDX file format of MNIST and Fashion-MNIST: read one file, raw or gzip-compressed.

An IDX file (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a 4-byte magic
number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian unsigned 32-bit
dimensions, then the values in C order. velocity reads the unsigned-byte type
(``0x08``) that the MNIST family uses: ``0x00000801`` (a 1-D label file) and
``0x00000803`` (a 3-D ``images × rows × cols`` file); any other rank of ubyte data is
read too, and the caller checks the rank it needs.

A file is validated before anything is allocated from its header: the magic, the
dimensions, and the byte count against what the header announces (a truncated
download and trailing garbage are both refused). Every problem is one
:class:`IdxError` line that names the file.

May import: numpy and the standard library only (the dataset layer,
:mod:`velocity.sim.data`, turns an :class:`IdxError` into its ``DatasetError``).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "IdxError", "read_idx"]

#: Magic number of a 1-D unsigned-byte IDX file (labels).
LABELS_MAGIC = 0x00000801
#: Magic number of a 3-D unsigned-byte IDX file (images × rows × cols).
IMAGES_MAGIC = 0x00000803

_UBYTE = 0x08
#: The IDX type codes and what they hold; velocity reads the first.
_TYPE_NAMES = {
    0x08: "uint8",
    0x09: "int8",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
#: Most dimensions a header may declare (the MNIST family uses 1 and 3).
_MAX_NDIM = 8
#: Bytes read at a time from a gzip stream (bounds memory by what the file really holds).
_CHUNK = 1 << 24


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class IdxError(ValueError):
    """An IDX file that cannot be read: the message names the file and what is wrong."""


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an unsigned-byte IDX file (raw, or gzip-compressed when it ends in ``.gz``).

    Parameters
    ----------
    path : str or path-like
        The file, e.g. ``train-images-idx3-ubyte`` or ``train-labels-idx1-ubyte.gz``.

    Returns
    -------
    np.ndarray
        A read-only uint8 array of the header's shape, e.g. ``(60000, 28, 28)``.

    Raises
    ------
    IdxError
        The file cannot be opened, is not gzip data although named ``.gz``, has a bad
        magic number (not ``0x00 0x00 0x08 <ndim>``), or holds more or fewer bytes
        than its header's dimensions announce.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "labels-idx1-ubyte"
    ...     _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9]))
    ...     read_idx(p).tolist()
    [7, 2, 9]
    """
    path = Path(path)
    compressed = path.name.endswith(".gz")
    try:
        with path.open("rb") as raw:
            if compressed:
                with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                    return _read(path, fh, size=None)
            return _read(path, raw, size=os.fstat(raw.fileno()).st_size)
    except IdxError:
        raise
    except EOFError as exc:
        raise IdxError(f"{path}: damaged gzip file: truncated ({_reason(exc)})") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise IdxError(f"{path}: not a valid gzip file ({_reason(exc)})") from None
    except OSError as exc:
        raise IdxError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _read(path: Path, fh: _Readable, size: int | None) -> np.ndarray:
    """The array of one open IDX stream; ``size`` is the file's length when uncompressed."""
    magic = fh.read(4)
    if len(magic) < 4:
        raise IdxError(f"{path}: not an IDX file: {len(magic)} bytes, shorter than the header")
    zero, dtype_code, ndim = magic[:2], magic[2], magic[3]
    if zero != b"\0\0" or dtype_code not in _TYPE_NAMES or not 1 <= ndim <= _MAX_NDIM:
        raise IdxError(
            f"{path}: not an IDX file: magic number 0x{magic.hex()}, expected "
            f"0x{LABELS_MAGIC:08x} (labels) or 0x{IMAGES_MAGIC:08x} (images)"
        )
    if dtype_code != _UBYTE:
        raise IdxError(
            f"{path}: IDX data of type {_TYPE_NAMES[dtype_code]} (magic 0x{magic.hex()}); "
            "velocity reads unsigned-byte IDX files (type 0x08), as MNIST ships them"
        )
    header = fh.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise IdxError(
            f"{path}: truncated IDX header: {ndim} dimensions announced, "
            f"{len(header)} of their {4 * ndim} bytes present"
        )
    dims = tuple(int(d) for d in np.frombuffer(header, dtype=">u4"))
    expected = math.prod(dims)
    offset = 4 + 4 * ndim
    if size is not None:  # a raw file: its length is known before reading
        _check_count(path, dims, expected, size - offset, exact=True)
        data = fh.read(expected)
    else:
        data = _read_at_most(fh, expected + 1)
    _check_count(path, dims, expected, len(data), exact=size is not None)
    array = np.frombuffer(data, dtype=np.uint8).reshape(dims)
    array.setflags(write=False)
    return array


def _read_at_most(fh: _Readable, limit: int) -> bytes:
    """Up to ``limit`` bytes, read in chunks so that a lying header allocates nothing."""
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = fh.read(min(_CHUNK, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _check_count(
    path: Path, dims: tuple[int, ...], expected: int, found: int, *, exact: bool
) -> None:
    """Refuse data bytes that differ from the header's count (``exact``: ``found`` is the
    true count, else at most one byte beyond ``expected`` was read)."""
    if found == expected:
        return
    announced = f"the header ({' × '.join(str(d) for d in dims)}) announces {expected:,}"
    if found < expected:
        what = f"truncated: {found:,} data bytes, {announced}"
    elif exact:
        what = f"{found - expected:,} bytes too many: {found:,} data bytes, {announced}"
    else:
        what = f"trailing bytes after the data: {announced}"
    raise IdxError(f"{path}: damaged IDX file: {what}")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
