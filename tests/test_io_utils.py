"""The atomic writers: modes that follow the umask, checksum sidecars that tell a truncated file
from a valid one, JSON read with a check, and damaged files set aside, never deleted."""

import hashlib
import os
import stat
import subprocess

import pytest

from nasnet_tf.io_utils import (
    CorruptFileError,
    atomic_save,
    atomic_write,
    check_file,
    checksum_path,
    current_umask,
    read_json,
    set_aside,
    sha256_file,
    verify,
    write_json,
)


@pytest.fixture
def umask():
    """Sets the process umask for a test, then restores it."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _write_text(path):
    def save(p):
        with open(p, "w") as f:
            f.write("weights")

    return save


# -- permissions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_every_writer_gives_the_mode_of_an_ordinary_open(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    atomic_write(tmp_path / "a.txt", lambda f: f.write("a"), checksum=True)
    write_json(tmp_path / "b.json", {"b": 1})
    atomic_save(tmp_path / "c.weights.h5", _write_text(tmp_path), checksum=True)
    with open(tmp_path / "plain.txt", "w") as f:  # what the umask gives an ordinary file
        f.write("x")
    assert _mode(tmp_path / "plain.txt") == mode
    for name in ("a.txt", "a.txt.sha256", "b.json", "c.weights.h5", "c.weights.h5.sha256"):
        assert _mode(tmp_path / name) == mode, name
    assert sorted(os.listdir(tmp_path)) == [
        "a.txt", "a.txt.sha256", "b.json", "c.weights.h5", "c.weights.h5.sha256", "plain.txt"]


# -- checksums ------------------------------------------------------------------------------------
def test_a_sidecar_tells_a_truncated_file_from_a_valid_one(tmp_path):
    path = tmp_path / "model.bin"
    payload = os.urandom(10_000)
    atomic_write(path, lambda f: f.write(payload), binary=True, checksum=True)
    digest = hashlib.sha256(payload).hexdigest()
    assert (tmp_path / "model.bin.sha256").read_text() == f"{digest}  model.bin\n"
    assert check_file(path, required=True) == digest == sha256_file(path)
    assert verify(path)

    with open(path, "r+b") as f:
        f.truncate(4_000)
    assert not verify(path)
    with pytest.raises(CorruptFileError) as error:
        check_file(path)
    message = str(error.value)
    assert "\n" not in message and repr(str(path)) in message
    assert "does not match its checksum" in message and "4000 bytes" in message
    assert isinstance(error.value, ValueError)


def test_the_sidecar_is_the_sha256sum_format(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write(path, lambda f: f.write("hello\n"), checksum=True)
    try:
        result = subprocess.run(["sha256sum", "-c", "a.txt.sha256"], cwd=tmp_path,
                                capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no sha256sum here")
    assert result.returncode == 0 and "a.txt: OK" in result.stdout


def test_a_recorded_digest_takes_the_sidecars_place(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write(path, lambda f: f.write("hello"))
    digest = hashlib.sha256(b"hello").hexdigest()
    assert not os.path.exists(checksum_path(path))
    assert check_file(path) is None  # no digest anywhere: unchecked, but readable
    assert not verify(path, required=True)
    assert check_file(path, expected_sha256=digest) == digest
    with pytest.raises(CorruptFileError, match="does not match the checksum recorded for it"):
        check_file(path, expected_sha256=hashlib.sha256(b"other").hexdigest())


@pytest.mark.parametrize("content", ["", "0123", "not a digest at all"])
def test_a_damaged_sidecar_is_reported_as_such(tmp_path, content):
    path = tmp_path / "a.txt"
    atomic_write(path, lambda f: f.write("hello"), checksum=True)
    with open(checksum_path(path), "w") as f:
        f.write(content)
    with pytest.raises(CorruptFileError, match=r"checksum file .*a\.txt\.sha256' is damaged"):
        check_file(path)


def test_missing_and_empty_files_fail_their_check(tmp_path):
    with pytest.raises(CorruptFileError, match=r"missing\.bin' is missing"):
        check_file(tmp_path / "missing.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(CorruptFileError, match=r"empty\.bin' is empty"):
        check_file(tmp_path / "empty.bin")


def test_rewriting_never_leaves_a_sidecar_of_another_version(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"v": 1}, checksum=True)
    write_json(path, {"v": 2})  # no checksum now: the old sidecar goes
    assert not os.path.exists(checksum_path(path))
    assert read_json(path) == {"v": 2}
    write_json(path, {"v": 3}, checksum=True)
    assert verify(path, required=True) and read_json(path) == {"v": 3}


def test_a_failed_write_leaves_the_old_file_and_its_sidecar(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write(path, lambda f: f.write("old"), checksum=True)

    def fail(f):
        f.write("new, half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail, checksum=True)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save(path, lambda p: fail(open(p, "w")), checksum=True)
    assert path.read_text() == "old" and verify(path, required=True)
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "a.txt.sha256"]


def test_atomic_save_keeps_the_files_own_name_at_the_end(tmp_path):
    seen = []

    def save(p):
        seen.append(os.path.basename(p))
        _write_text(tmp_path)(p)

    digest = atomic_save(tmp_path / "epoch-00001.weights.h5", save, checksum=True)
    assert seen[0].startswith(".tmp-") and seen[0].endswith("-epoch-00001.weights.h5")
    assert digest == hashlib.sha256(b"weights").hexdigest()
    assert atomic_save(tmp_path / "b.keras", _write_text(tmp_path)) is None


# -- JSON -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, match", [
    ('{"epoch": 3, "weig', r"'.*state\.json' is not valid JSON at line 1 column 14"),
    ("", r"'.*state\.json' is empty"),
    ("\x00" * 32, r"'.*state\.json' is not valid JSON"),
])
def test_a_damaged_json_file_is_named_in_one_line(tmp_path, text, match):
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(CorruptFileError, match=match) as error:
        read_json(path)
    assert "\n" not in str(error.value)


def test_a_truncated_json_file_with_a_sidecar_fails_before_parsing(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"epoch": 3, "history": [1, 2, 3]}, checksum=True)
    path.write_text(path.read_text().rstrip("\n"))  # still valid JSON, but not what was written
    with pytest.raises(CorruptFileError, match="does not match its checksum"):
        read_json(path)
    assert read_json(path, expected_sha256=sha256_file(path)) == {"epoch": 3,
                                                                   "history": [1, 2, 3]}


# -- setting aside --------------------------------------------------------------------------------
def test_set_aside_renames_the_file_and_its_sidecar_and_never_overwrites(tmp_path):
    path = tmp_path / "epoch-00003.weights.h5"
    atomic_write(path, lambda f: f.write("first"), checksum=True)
    first = set_aside(path)
    assert os.path.basename(first) == "epoch-00003.weights.h5.corrupt"
    atomic_write(path, lambda f: f.write("second"), checksum=True)
    second = set_aside(path)
    assert os.path.basename(second) == "epoch-00003.weights.h5.corrupt.1"
    assert sorted(os.listdir(tmp_path)) == [
        "epoch-00003.weights.h5.corrupt", "epoch-00003.weights.h5.corrupt.1",
        "epoch-00003.weights.h5.corrupt.1.sha256", "epoch-00003.weights.h5.corrupt.sha256"]
    assert open(first).read() == "first" and open(second).read() == "second"


def test_remove_temporaries_clears_only_interrupted_writes(tmp_path):
    from nasnet_tf.io_utils import remove_temporaries

    (tmp_path / ".tmp-ab12-model.keras").write_bytes(b"partial")
    (tmp_path / ".tmp-cd34.json").write_text("{")
    (tmp_path / "model.keras").write_bytes(b"whole")
    (tmp_path / ".tmp-dir").mkdir()
    (tmp_path / ".tmp-link").symlink_to(tmp_path / "model.keras")
    removed = remove_temporaries(tmp_path)
    assert removed == [".tmp-ab12-model.keras", ".tmp-cd34.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-dir", ".tmp-link", "model.keras"]
    assert remove_temporaries(tmp_path / "missing") == []
