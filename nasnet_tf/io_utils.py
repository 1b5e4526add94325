"""Files written whole or not at all: into a temporary sibling, flushed, then `os.replace`d."""

import json
import os
import tempfile


def atomic_write(path, write_fn, *, binary=False, prefix=".tmp-", suffix=".tmp"):
    """Calls `write_fn(file)` on a temporary file beside `path`, then moves it onto `path`.

    A process killed at any moment leaves either the old file or the new one, never half of
    one (at worst a stray temporary file named `prefix...suffix`). Parent directories are made.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> atomic_write(path, lambda f: f.write("hello"))
    >>> open(path).read()
    'hello'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, data, *, sort_keys=False):
    """Writes `data` as indented JSON to `path`, whole or not at all."""

    def write(f):
        json.dump(data, f, indent=2, sort_keys=sort_keys)
        f.write("\n")

    atomic_write(path, write, suffix=".json")


__all__ = ["atomic_write", "write_json"]
