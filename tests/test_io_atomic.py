"""Atomic writes: success renames into place, failure leaves no temp and the old data intact."""

import os

import pytest

from physavatar.io.atomic import atomic_dir, atomic_path, atomic_write
from physavatar.io.errors import OutputExistsError


def _names(folder):
    return sorted(os.listdir(folder))


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"  # parent folders are created
    with atomic_write(target, "w") as f:
        f.write("new")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_text() == "new"
    assert _names(target.parent) == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(), not mkstemp's 0600


def test_atomic_write_error_keeps_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["out.bin"]


def test_atomic_write_rejects_read_mode(tmp_path):
    with pytest.raises(ValueError, match="write mode"):
        with atomic_write(tmp_path / "x", "r"):
            pass


def test_atomic_path_keeps_suffix_and_renames(tmp_path):
    target = tmp_path / "clip.npy"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npy" and tmp != target
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert _names(tmp_path) == ["clip.npy"]


def test_atomic_path_error_and_no_output(tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"keep")
    with pytest.raises(KeyError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyError("x")
    with pytest.raises(ValueError, match="v.mp4.*produced no file"):
        with atomic_path(target):
            pass  # a writer that wrote nothing is an error, not a silent success
    assert target.read_bytes() == b"keep"
    assert _names(tmp_path) == ["v.mp4"]


def test_atomic_dir_refuses_nonempty_then_overwrites(tmp_path):
    target = tmp_path / "clip"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
        assert not target.exists()
    assert _names(target) == ["a.txt"]

    with pytest.raises(OutputExistsError, match="clip.*overwrite=True"):
        with atomic_dir(target):
            raise AssertionError("must refuse before the block runs")
    assert (target / "a.txt").read_text() == "1"

    with pytest.raises(RuntimeError):
        with atomic_dir(target, overwrite=True) as d:
            (d / "b.txt").write_text("2")
            raise RuntimeError("crash mid-clip")
    assert _names(target) == ["a.txt"] and _names(tmp_path) == ["clip"]

    with atomic_dir(target, overwrite=True) as d:
        (d / "b.txt").write_text("2")
    assert _names(target) == ["b.txt"] and _names(tmp_path) == ["clip"]


def test_atomic_dir_gives_files_open_modes(tmp_path):
    """Libraries that write through temp files of their own (safetensors) leave 0600: the folder's files end as
    open() would make them, executables stay executable."""
    from physavatar.io.atomic import umask_mode

    with atomic_dir(tmp_path / "model") as d:
        (d / "sub").mkdir()
        for name, mode in (("weights.safetensors", 0o600), ("sub/config.json", 0o600), ("run.sh", 0o700)):
            (d / name).write_text("x")
            os.chmod(d / name, mode)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "model").rglob("*") if p.is_file()}
    assert modes == {"weights.safetensors": umask_mode(), "config.json": umask_mode(), "run.sh": umask_mode(0o777)}


def test_atomic_dir_fills_empty_existing_dir(tmp_path):
    target = tmp_path / "empty"
    target.mkdir()
    with atomic_dir(target) as d:
        (d / "x").write_text("x")
    assert _names(target) == ["x"]
