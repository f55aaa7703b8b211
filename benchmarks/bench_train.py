"""Training step time and peak memory on the CPU for the tiny and demo model sizes (issue 6).

    python benchmarks/bench_train.py [--steps 10]

Each size runs in its own process (so peak RSS is its own), on a feature dataset of random values with the
right shapes (step time does not depend on the values): tiny = 9 frames at 64x64 (z 4); demo = 33 frames at
128x128 (z 16, Whisper tiny.en and MiniLM widths). The real-size GPU step is measured by bench_model.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "tiny": dict(preset="tiny", frames=9, z=4, hw=8, audio_dim=24, mllm_dim=20),
    "demo": dict(preset="demo", frames=33, z=16, hw=16, audio_dim=384, mllm_dim=384),
}


def one(size: str, steps: int, checkpointing: bool) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import torch

    from _fake_features import make_feature_dataset
    from physavatar.training.config import load_train_config
    from physavatar.training.trainer import Trainer

    spec = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp:
        data = make_feature_dataset(Path(tmp) / "data", clips=4, frames=spec["frames"], z=spec["z"], hw=spec["hw"],
                                    audio_dim=spec["audio_dim"], mllm_dim=spec["mllm_dim"])
        cfg = load_train_config(None, {
            "model_preset": spec["preset"], "data.root": str(data), "data.num_frames": spec["frames"],
            "data.known_frames_prob": 0.0, "run.out_dir": str(Path(tmp) / "run"),
            "run.tensorboard": False, "run.gradient_checkpointing": checkpointing})
        trainer = Trainer(cfg, progress=False)
        trainer.model.train()
        for _ in range(2):  # warm-up
            trainer.train_step()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        seconds = (time.perf_counter() - start) / steps
    params = sum(p.numel() for p in trainer.model.parameters())
    return {"size": size, "gradient_checkpointing": checkpointing, "params_M": round(params / 1e6, 3),
            "seconds_per_step": round(seconds, 4), "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF)
                                                                         .ru_maxrss / 1024, 1),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per size (after 2 warm-up steps)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.steps, args.checkpointing)))
        return
    for size in SIZES:
        for checkpointing in (False, True):
            cmd = [sys.executable, __file__, "--one", size, "--steps", str(args.steps)]
            out = subprocess.run(cmd + (["--checkpointing"] if checkpointing else []), capture_output=True,
                                 text=True, check=True)
            print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
