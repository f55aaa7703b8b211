"""How well the training features predict the mouth: a ridge probe on world clips, new people at test.

    python benchmarks/probe_world_audio_mouth.py --data data/world --vae-name vae_world

Per video frame, the stored audio features of `physavatar extract` (Whisper tiny.en by default, one vector per
25-fps frame, what the transformer's audio branch reads) are mapped linearly to the truth's mouth opening: the
gap between the inner lips (iBUG 62 and 66) in face heights, from each clip's keypoints. Fitted on the train
split, scored (correlation) on the test split, whose people were never trained on. A high score means the
audio the model is given determines the mouth; a model that still does not move its lips has not learned to use
it. Also printed: how much the face's physical-state token (the L_disc target) varies with the mouth. ~1 min.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load(data: str, split: str, vae_name: str, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from physavatar.data.dataset import ClipDataset
    from physavatar.physstate.layout import FACE, PHYS_PARTS

    dataset = ClipDataset(data, num_frames=num_frames, split=split, vae_name=vae_name)
    face_token = PHYS_PARTS.index("face")
    features, gaps, tokens = [], [], []
    for sample in dataset.samples:
        face = np.load(Path(sample.clip_dir) / "keypoints.npy")[:, FACE, :2]
        height = face[:, :, 1].max(axis=1) - face[:, :, 1].min(axis=1)
        gaps.append((face[:, 66, 1] - face[:, 62, 1]) / height)
        features.append(sample.audio.numpy())
        tokens.append(sample.phys[:, face_token].numpy())
    return np.concatenate(features), np.concatenate(gaps), np.concatenate(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/world", help="world dataset with extracted features")
    parser.add_argument("--vae-name", default="vae_world", help="the latents' name (the dataset loader needs them)")
    parser.add_argument("--frames", type=int, default=33, help="frames per clip (data.num_frames)")
    parser.add_argument("--ridge", type=float, default=10.0, help="ridge penalty on z-scored features")
    args = parser.parse_args()
    x_train, y_train, _ = load(args.data, "train", args.vae_name, args.frames)
    x_test, y_test, tokens = load(args.data, "test", args.vae_name, args.frames)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    a, b = (x_train - mean) / std, (x_test - mean) / std
    weights = np.linalg.solve(a.T @ a + args.ridge * np.eye(a.shape[1]), a.T @ (y_train - y_train.mean()))
    score = np.corrcoef(b @ weights + y_train.mean(), y_test)[0, 1]
    print(f"{len(x_train)} train / {len(x_test)} test frames; audio features -> inner-lip gap, "
          f"test correlation {score:.3f}")
    varying = tokens.std(axis=0) > 0
    corr = np.array([np.corrcoef(tokens[:, d], y_test)[0, 1] for d in np.flatnonzero(varying)])
    print(f"face token: std over frames {tokens.std(axis=0).mean():.4f} (mean |value| {np.abs(tokens).mean():.3f}); "
          f"{int((np.abs(corr) > 0.5).sum())} of {tokens.shape[1]} dims correlate with the gap above 0.5 "
          f"(max {np.abs(corr).max():.2f})")


if __name__ == "__main__":
    main()
