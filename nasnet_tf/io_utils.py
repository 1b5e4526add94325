"""Files written whole or not at all, with the permissions the umask gives, and checked when read.

Every writer here goes through a temporary sibling that is flushed, `fsync`ed (unless
`fsync=False`), given the mode an ordinary `open` would give (`0o666 & ~umask`, where
`mkstemp` alone gives `0o600`), then `os.replace`d onto its name. With `checksum=True` a
sidecar `<file>.sha256` (the `sha256sum` format: `sha256sum -c` checks it too) records the
file's digest, so a file cut short or changed later (a full disk, an interrupted copy, a sync
tool) is told from a valid one by `verify` / `check_file` before it is used.

A process killed at any moment leaves the old file or the new one, never a part of one. The
sidecar is removed before the file is replaced and written after, so a kill in between leaves a
file without a sidecar (unchecked, but whole), never a file beside another file's digest.

That needs no `fsync`: `os.replace` is atomic for every other process, and for this one when
it is killed. `fsync` is about power loss and OS crashes, and costs a journal commit (a few
milliseconds) each time. Files rewritten often and recoverable when lost (a state file whose
damage the checksum detects and a fallback covers) can be written with `fsync=False`, and made
durable together at a commit point: `fsync_file` on those that must survive, then
`fsync_directory` on the directory whose renames must (ext4 and XFS journal metadata in
order, so that commit also carries every rename made before it).
"""

import hashlib
import json
import os
import tempfile

CHECKSUM_SUFFIX = ".sha256"
CORRUPT_SUFFIX = ".corrupt"
_CHUNK = 1 << 20


class CorruptFileError(ValueError):
    """A file that is damaged: it does not match its checksum, is empty, truncated or invalid.

    The message names the file and what is wrong with it, in one line.
    """


# -- permissions ----------------------------------------------------------------------------------
def _umask_from_proc():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_at_import():
    # `os.umask` can only be read by setting it: done once, at import, as a fallback where
    # /proc/self/status is absent (another thread creating a file in between would get 022).
    old = os.umask(0o022)
    os.umask(old)
    return old


_UMASK_AT_IMPORT = _umask_at_import()


def current_umask():
    """The process' umask: read race-free from `/proc/self/status` where Linux provides it,
    else the value it had when this module was imported.

    Example:

    >>> 0 <= current_umask() <= 0o777
    True
    """
    umask = _umask_from_proc()
    return _UMASK_AT_IMPORT if umask is None else umask


def _file_mode():
    return 0o666 & ~current_umask()


# -- checksums ------------------------------------------------------------------------------------
def checksum_path(path):
    """The sidecar that holds `path`'s SHA-256: `path + ".sha256"`."""
    return os.fspath(path) + CHECKSUM_SUFFIX


def sha256_file(path):
    """The hex SHA-256 digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_sidecar(path):
    """The digest recorded beside `path`, or `None` when there is no sidecar."""
    sidecar = checksum_path(path)
    try:
        with open(sidecar, encoding="ascii", errors="replace") as f:
            text = f.read(4096)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CorruptFileError(f"Cannot read the checksum file {sidecar!r}: {e.strerror}.") from e
    fields = text.split()
    digest = fields[0].lower() if fields else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise CorruptFileError(
            f"The checksum file {sidecar!r} is damaged (expected a SHA-256 hex digest, found "
            f"{text[:80]!r}), so {os.fspath(path)!r} cannot be checked."
        )
    return digest


def _write_sidecar(path, digest, fsync=True, prefix=".tmp-"):
    name = os.path.basename(os.fspath(path))
    _atomic(checksum_path(path), lambda f: f.write(f"{digest}  {name}\n"), binary=False,
            prefix=prefix, suffix=CHECKSUM_SUFFIX, fsync=fsync)


def check_file(path, *, expected_sha256=None, required=False):
    """Raises `CorruptFileError` unless the file at `path` is whole.

    The file is compared with `expected_sha256` when given (e.g. a digest a manifest recorded),
    else with its sidecar `<path>.sha256`. A file with neither passes unless `required`
    (files written before checksums existed stay readable); a missing or empty file never does.

    Args:
        path: the file.
        expected_sha256: the hex digest it must have; `None` reads the sidecar.
        required: whether a file without any recorded digest is an error.

    Returns:
        The file's hex digest when it was checked, else `None`.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> atomic_write(path, lambda f: f.write(b"123456"), binary=True, checksum=True)
    >>> check_file(path) == sha256_file(path)
    True
    >>> with open(path, "r+b") as f:
    ...     _ = f.truncate(3)
    >>> check_file(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nasnet_tf.io_utils.CorruptFileError: '...a.bin' does not match its checksum ...
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise CorruptFileError(f"{path!r} is missing.") from None
    if not os.path.isfile(path):
        raise CorruptFileError(f"{path!r} is not a file.")
    if size == 0:
        raise CorruptFileError(f"{path!r} is empty (0 bytes): truncated or never written.")
    if expected_sha256 is not None:
        expected, source = str(expected_sha256).lower(), "the checksum recorded for it"
    else:
        expected, source = _read_sidecar(path), f"its checksum in {checksum_path(path)!r}"
    if expected is None:
        if required:
            raise CorruptFileError(
                f"{path!r} has no checksum file {checksum_path(path)!r}, so it cannot be checked."
            )
        return None
    actual = sha256_file(path)
    if actual != expected:
        raise CorruptFileError(
            f"{path!r} does not match {source} ({size} bytes, SHA-256 {actual[:12]}..., "
            f"expected {expected[:12]}...): truncated or changed after it was written."
        )
    return actual


def verify(path, *, expected_sha256=None, required=False):
    """Whether the file at `path` passes `check_file` (same arguments): `True` or `False`.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_write(path, lambda f: f.write("hello"), checksum=True)
    >>> verify(path)
    True
    >>> _ = open(path, "w").write("hell")
    >>> verify(path)
    False
    """
    try:
        check_file(path, expected_sha256=expected_sha256, required=required)
    except CorruptFileError:
        return False
    return True


# -- durability -----------------------------------------------------------------------------------
def fsync_file(path):
    """`fsync`s the file at `path` (its data and size reach the disk)."""
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path):
    """`fsync`s the directory at `path`, so that the files created, renamed or removed in it
    survive a power loss. Does nothing where directories cannot be opened or synced (Windows,
    some network file systems).

    Example:

    >>> import tempfile
    >>> fsync_directory(tempfile.mkdtemp())
    """
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- writers --------------------------------------------------------------------------------------
def _finish(tmp, path, checksum, fsync=True, prefix=".tmp-"):
    """Gives `tmp` the ordinary mode, moves it onto `path`, writes the sidecar if asked (its
    temporary file named with the same `prefix` as the file's, so that whoever sweeps one
    writer's interrupted writes finds both)."""
    os.chmod(tmp, _file_mode())
    digest = sha256_file(tmp) if checksum else None
    sidecar = checksum_path(path)
    if checksum or os.path.lexists(sidecar):
        # Never leave a sidecar that describes another version of the file.
        try:
            os.remove(sidecar)
        except FileNotFoundError:
            pass
    os.replace(tmp, path)
    if checksum:
        _write_sidecar(path, digest, fsync=fsync, prefix=prefix)
    return digest


def _atomic(path, write_fn, *, binary, prefix, suffix, checksum=False, fsync=True):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write_fn(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        return _finish(tmp, path, checksum, fsync, prefix)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write(path, write_fn, *, binary=False, prefix=".tmp-", suffix=".tmp", checksum=False,
                 fsync=True):
    """Calls `write_fn(file)` on a temporary file beside `path`, then moves it onto `path`.

    A process killed at any moment leaves either the old file or the new one, never half of
    one (at worst a stray temporary file named `prefix...suffix`). Parent directories are made.
    The file gets the mode `open` would give it (`0o666` less the umask).

    Args:
        path: the file to write.
        write_fn: called with the open temporary file (text, or bytes with `binary=True`).
        binary: open the temporary file in binary mode.
        prefix, suffix: of the temporary file's name.
        checksum: also write the sidecar `<path>.sha256` that `check_file` / `verify` read.
        fsync: `fsync` the file (and its sidecar) before it is moved onto `path`. With
            `False` the file is still written whole or not at all for any process killed at
            any moment, but a power loss may leave it (or its sidecar) damaged or empty: for
            files recoverable then (see the module docstring).

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_write(path, lambda f: f.write("hello"))
    >>> open(path).read()
    'hello'
    """
    _atomic(path, write_fn, binary=binary, prefix=prefix, suffix=suffix, checksum=checksum,
            fsync=fsync)


def remove_temporaries(directory, prefix=".tmp-"):
    """Removes the temporary files that interrupted writes of this module left in `directory`.

    A process killed inside `atomic_write` or `atomic_save` leaves its temporary file (named
    `prefix` + ..., mode 0600) behind; the file it was replacing is intact. Call this where
    the directory's only writer starts, before it writes again. Returns the names removed.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in sorted(names):
        path = os.path.join(directory, name)
        if name.startswith(prefix) and os.path.isfile(path) and not os.path.islink(path):
            try:
                os.remove(path)
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed


def atomic_save(path, save_fn, *, checksum=False):
    """Like `atomic_write` for writers that take a file name (`model.save_weights`,
    `model.save`): calls `save_fn(temporary_path)`, where the temporary name ends with
    `path`'s own name (Keras checks the extension), then moves it onto `path`.

    Returns:
        The file's hex SHA-256 digest with `checksum=True`, else `None`.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> def save(p):
    ...     with open(p, "w") as f:
    ...         f.write("hello")
    >>> len(atomic_save(path, save, checksum=True))
    64
    >>> verify(path), open(path).read()
    (True, 'hello')
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + os.path.basename(path))
    os.close(fd)
    try:
        save_fn(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return _finish(tmp, path, checksum)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, data, *, sort_keys=False, checksum=False, fsync=True):
    """Writes `data` as indented JSON to `path`, whole or not at all (see `atomic_write`)."""

    def write(f):
        json.dump(data, f, indent=2, sort_keys=sort_keys)
        f.write("\n")

    atomic_write(path, write, suffix=".json", checksum=checksum, fsync=fsync)


def read_json(path, *, expected_sha256=None, required_checksum=False):
    """Reads the JSON file at `path` after `check_file`; a damaged file raises
    `CorruptFileError` naming it (never a bare decoder message).

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.json")
    >>> write_json(path, {"epoch": 3}, checksum=True)
    >>> read_json(path)
    {'epoch': 3}
    """
    path = os.fspath(path)
    check_file(path, expected_sha256=expected_sha256, required=required_checksum)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" at line {e.lineno} column {e.colno}" if hasattr(e, "lineno") else ""
        raise CorruptFileError(
            f"{path!r} is not valid JSON{where}: truncated or damaged."
        ) from None
    except OSError as e:
        raise CorruptFileError(f"Cannot read {path!r}: {e.strerror}.") from e


# -- damaged files --------------------------------------------------------------------------------
def set_aside(path, suffix=CORRUPT_SUFFIX):
    """Renames a damaged file (and its sidecar) out of the way, never overwriting or deleting
    anything: `f` becomes `f.corrupt` (or `f.corrupt.1`, ... when that exists) and
    `f.sha256` becomes `f.corrupt.sha256`.

    Returns:
        The file's new path.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_write(path, lambda f: f.write("x"))
    >>> os.path.basename(set_aside(path))
    'a.txt.corrupt'
    """
    path = os.fspath(path)
    target, n = path + suffix, 0
    while os.path.lexists(target) or os.path.lexists(checksum_path(target)):
        n += 1
        target = f"{path}{suffix}.{n}"
    os.rename(path, target)
    if os.path.lexists(checksum_path(path)):
        os.rename(checksum_path(path), checksum_path(target))
    return target


def first_line(error, with_type=True):
    """`"ErrorType: first line of its message"`, for one-line error messages; with
    `with_type=False`, the first line alone (the type's name when the message is empty).

    Example:

    >>> first_line(ValueError("bad\\nmore")), first_line(ValueError("bad"), with_type=False)
    ('ValueError: bad', 'bad')
    """
    text = str(error).strip()
    if not with_type:
        return text.splitlines()[0] if text else type(error).__name__
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


__all__ = [
    "CorruptFileError",
    "atomic_save",
    "atomic_write",
    "check_file",
    "checksum_path",
    "current_umask",
    "first_line",
    "fsync_directory",
    "fsync_file",
    "read_json",
    "set_aside",
    "sha256_file",
    "verify",
    "write_json",
]
