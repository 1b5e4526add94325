"""The state of a directory at every write boundary: what a kill at each instant would leave.

`Boundaries(root)` is a context manager that copies `root` just before every file-system change
made under it through `os.replace`, `os.rename`, `os.remove` or `os.unlink` (every state file of
the library is written to a temporary file, then `os.replace`d, so these calls are the instants
between which the directory's state is constant), and once more at exit. In each copy the
temporary files are cut to half their size: a kill in the middle of a write leaves a temporary
file partly written. Identical copies are kept once.

    with Boundaries(run_dir, tmp_path / "snapshots") as b:
        ...  # the run whose writes are to be interrupted
    for snapshot in b.snapshots:
        ...  # resume from a copy of `snapshot` and check that it resumes or falls back

The copies are the file system a SIGKILL at that instant leaves (this process's file writes go
straight to the kernel: every writer closes or flushes its file before the rename).
"""

import hashlib
import os
import shutil

_CALLS = ("replace", "rename", "remove", "unlink")


def is_temporary(name):
    """The names the library's atomic writers give their temporary files."""
    return name.startswith(".tmp-") or "_tmp_" in name


def _digest(directory):
    digest = hashlib.sha256()
    for base, dirs, files in sorted(os.walk(directory)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            digest.update(os.path.relpath(path, directory).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


class Boundaries:
    def __init__(self, root, store, only=None):
        self.root = os.path.abspath(os.fspath(root))
        self.only = only  # a test on a file name: keep the changes to (or onto) such files
        self.active = True  # set to False to let writes through unrecorded
        self.store = os.fspath(store)
        self.snapshots = []  # (path of the copy, what was about to happen)
        self.calls = 0
        self._seen = set()
        self._originals = {}

    def _under_root(self, path):
        path = os.path.abspath(os.fspath(path))
        return path == self.root or path.startswith(self.root + os.sep)

    def snap(self, what):
        if not os.path.isdir(self.root):
            return
        copy = os.path.join(self.store, f"{len(self.snapshots):04d}")
        shutil.copytree(self.root, copy)
        for base, _, files in os.walk(copy):
            for name in files:
                if is_temporary(name):
                    path = os.path.join(base, name)
                    with open(path, "r+b") as f:
                        f.truncate(os.path.getsize(path) // 2)
        digest = _digest(copy)
        if digest in self._seen:
            shutil.rmtree(copy)
            return
        self._seen.add(digest)
        self.snapshots.append((copy, what))

    def __enter__(self):
        os.makedirs(self.store, exist_ok=True)
        for name in _CALLS:
            original = getattr(os, name)
            self._originals[name] = original

            def call(src, *args, _name=name, _original=original, **kwargs):
                names = [os.path.basename(os.fspath(p)) for p in (src, *args[:1])]
                if self.active and self._under_root(src) and (
                        self.only is None or any(self.only(n) for n in names)):
                    self.calls += 1
                    self.snap(f"before os.{_name}({os.path.relpath(src, self.root)})")
                return _original(src, *args, **kwargs)

            setattr(os, name, call)
        return self

    def __exit__(self, *exc):
        for name, original in self._originals.items():
            setattr(os, name, original)
        if exc[0] is None:
            self.snap("the end")
        return False


def problems_left(directory):
    """Temporary files of interrupted writes still in `directory`, and files that others cannot
    read (mode 0600 under umask 022): what a resumed run must not leave behind."""
    found = []
    for base, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, directory)
            if is_temporary(name):
                found.append(f"temporary file {rel}")
            elif not os.stat(path).st_mode & 0o044:
                found.append(f"{rel} is mode {oct(os.stat(path).st_mode & 0o777)}")
    return found
