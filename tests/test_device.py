"""Device names: auto, checked names, and one clear error for a bad one."""

import pytest
import torch

from physavatar.cli import main
from physavatar.device import resolve_device


def test_auto_and_named_devices():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")  # one past the last (or any, without CUDA)


def test_a_bad_device_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "manifest.jsonl").write_text("")
    assert main(["extract", str(tmp_path), "--vae", str(tmp_path), "--device", "gpu", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "device 'gpu'" in err and "Traceback" not in err



def test_extract_shards_share_the_cores(monkeypatch):
    """`extract --shard K/N` gives torch 1/N of the cores while it works (N processes each taking every core
    wait on each other) and restores the count after; OMP_NUM_THREADS, when set, decides instead."""
    import os

    from physavatar.commands.extract import _threads_for_shards

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    with _threads_for_shards(2):
        assert torch.get_num_threads() == 2
    with _threads_for_shards(8):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with _threads_for_shards(2):
        assert torch.get_num_threads() == before
