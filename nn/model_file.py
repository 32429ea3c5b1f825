"""The bytes of a model file: written atomically to the user's path, read at a bounded cost.

A model file is an ``.npz``: a zip archive of uncompressed ``.npy`` arrays, as
``np.savez`` writes it. Nothing in it is pickled, so it holds numbers and text only.

Writing goes to one temporary file beside the target, ``.<name>.saving``, which
is then renamed over it: a save that is killed leaves the old file whole, and
the next save to that path reuses (so removes) the temporary file. A lock on
the temporary file keeps two saves to one path from writing into each other.

Reading checks before it allocates: every entry must be an uncompressed
``.npy`` array whose header declares exactly the bytes the entry holds, so no
array can claim more memory than the file's size; the zip's checksums catch
flipped bytes. Every problem is a ``ModelFileError`` naming the path.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np

try:  # a lock keeps two saves to one path apart; without fcntl (Windows) there is none
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


class ModelFileError(ValueError):
    """A file that ``nn.load_model`` or ``model.load_weights`` can't read as a model:
    damaged, truncated, foreign, or not fitting the model it is loaded into."""


# -- writing ---------------------------------------------------------------------------------

def temporary_path(target: str) -> str:
    """Where a save to ``target`` writes before renaming: one fixed name beside it."""
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}.saving")


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None],
                     what: str = "save") -> None:
    """Write ``path`` with ``write(file)``: after a crash, ``path`` is the old file or the new.

    A symlink is followed to its target (which is replaced, the link kept); an
    existing file keeps its permissions; a directory or device is refused.
    Errors name ``path`` as given.
    """
    path = os.fspath(path)
    target = os.path.realpath(path)
    mode = _mode_for(path, target, what)
    temporary = temporary_path(target)
    try:
        descriptor = _locked_file(temporary)
    except OSError as err:
        raise _naming(err, what, path) from None
    try:
        try:
            os.ftruncate(descriptor, 0)
            os.fchmod(descriptor, mode)
            with os.fdopen(os.dup(descriptor), "wb") as file:  # the lock stays with descriptor
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                if _is_same_file(descriptor, temporary):
                    os.unlink(temporary)
            raise
    except OSError as err:
        raise _naming(err, what, path) from err
    finally:
        os.close(descriptor)  # releases the lock


def _mode_for(path: str, target: str, what: str) -> int:
    """The permissions for the new file: the existing file's, else what open() would give."""
    try:
        info = os.stat(target)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
    except OSError as err:
        raise _naming(err, what, path) from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{what}: {path!r} is a directory; give a file name, e.g. "
                                f"{os.path.join(path, 'model.npz')!r}")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what}: {path!r} is not a regular file (a device, pipe or socket); "
                         "a model is saved to a file")
    return stat.S_IMODE(info.st_mode)


def _locked_file(temporary: str) -> int:
    """The temporary file opened and locked; if another save renamed it meanwhile, a new one."""
    while True:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
                             | getattr(os, "O_CLOEXEC", 0), 0o600)
        if fcntl is None:
            return descriptor
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        if _is_same_file(descriptor, temporary):
            return descriptor
        os.close(descriptor)


def _is_same_file(descriptor: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(descriptor), os.lstat(path))
    except FileNotFoundError:
        return False


def _naming(err: OSError, what: str, path: str) -> OSError:
    """``err`` again, its message naming the user's path rather than a temporary file."""
    reason = err.strerror or str(err)
    return type(err)(err.errno, f"{what}: can't write {path!r}: {reason}")


# -- reading ---------------------------------------------------------------------------------

MAX_HEADER_BYTES = 10_000  # numpy's own limit for an .npy header


class Archive:
    """The arrays of a model file, known by name, shape and dtype before any is read.

    ``entries`` maps each array's name to its (shape, dtype); ``read(name)``
    then reads one array, whose size the file's own size already bounds.
    """

    def __init__(self, path: str | os.PathLike, what: str) -> None:
        self.path, self.what = os.fspath(path), what
        info = os.stat(self.path)  # a missing file raises FileNotFoundError, as open() would
        if not stat.S_ISREG(info.st_mode):
            raise self.error("is not a regular file" + (" (a directory)"
                                                     if stat.S_ISDIR(info.st_mode) else ""))
        self.size = info.st_size
        try:
            self.zip = zipfile.ZipFile(self.path)
        except Exception as err:  # noqa: BLE001 - any failure to parse foreign bytes
            raise self.unreadable(err) from None
        try:
            self.entries = self._entries()
        except BaseException:
            self.zip.close()
            raise

    def error(self, problem: str) -> ModelFileError:
        return ModelFileError(f"{self.what}: {self.path!r} {problem}")

    def unreadable(self, err: BaseException) -> ModelFileError:
        return ModelFileError(f"{self.what}: {self.path!r} is not a readable microtensor model "
                              f"file (truncated, foreign, or damaged): "
                              f"{type(err).__name__}: {err}")

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _entries(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        entries: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            name = info.filename.removesuffix(".npy")
            if name == info.filename or name in entries:
                raise self.error(f"has an entry {info.filename!r} that is not a single .npy array")
            if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                raise self.error(f"has an entry {info.filename!r} that is compressed or "
                                 "encrypted; a model file holds plain arrays")
            if info.file_size != info.compress_size or info.file_size > self.size:
                raise self.error(f"has an entry {info.filename!r} of {info.file_size:,} bytes in "
                                 f"a file of {self.size:,}")
            with self._opened(info) as file:
                shape, dtype = self._header(info, file)
            entries[name] = shape, dtype
            self._infos[name] = info
        return entries

    @contextlib.contextmanager
    def _opened(self, info: zipfile.ZipInfo) -> Iterator[BinaryIO]:
        try:
            with self.zip.open(info) as file:
                yield file
        except ModelFileError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure to parse foreign bytes
            raise self.unreadable(err) from None

    def _header(self, info: zipfile.ZipInfo, file: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
        """The array's shape and dtype, once its declared size is the entry's true size."""
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(file, MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(file, MAX_HEADER_BYTES)
        else:
            raise self.error(f"has an entry {info.filename!r} of .npy version {version}")
        if dtype.hasobject or dtype.kind not in "biuf" or fortran and len(shape) > 1:
            raise self.error(f"has an entry {info.filename!r} holding {dtype} values"
                             f"{' in Fortran order' if fortran else ''}; a model file holds "
                             "plain numbers (never pickled objects)")
        size = math.prod(shape) * dtype.itemsize
        if file.tell() + size != info.file_size:
            raise self.error(f"has an entry {info.filename!r} declaring an array of shape {shape} "
                             f"({size:,} bytes) but holds {info.file_size - file.tell():,}")
        return tuple(shape), dtype

    def read(self, name: str) -> np.ndarray:
        """The array ``name``, its bytes checked against the zip's checksum."""
        shape, dtype = self.entries[name]
        info = self._infos[name]
        with self._opened(info) as file:
            self._header(info, file)
            data = bytearray(math.prod(shape) * dtype.itemsize)
            if file.readinto(data) != len(data) or file.read(1):
                raise self.error(f"has a truncated entry {info.filename!r}")
        return np.frombuffer(data, dtype=dtype).reshape(shape)
