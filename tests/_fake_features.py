"""A clip dataset with features written directly (no encoders): fast data for trainer tests.

The values are random but seeded; the audio features carry a signal the model can learn (the latents of
each clip are a function of its audio), so a loss curve on them goes down for a reason.
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from physavatar.constants import num_latent_frames
from physavatar.encoders.audio import AudioFeatures


def make_feature_dataset(root: Path, *, clips=4, frames=9, z=4, hw=8, audio_dim=24, mllm_dim=20, seed=0,
                         planner="default", audio_backend="default", vae_name="vae") -> Path:
    rng = np.random.default_rng(seed)
    f = num_latent_frames(frames)
    mix = rng.standard_normal((audio_dim, z)).astype(np.float32) / np.sqrt(audio_dim)
    rows = []
    for i in range(clips):
        clip = root / "clips" / f"{i:06d}"
        (clip / "features").mkdir(parents=True)
        audio = rng.standard_normal((frames, audio_dim)).astype(np.float32)
        per_latent = np.concatenate([audio[:1], audio[1:].reshape(f - 1, 4, audio_dim).mean(1)]) @ mix  # (f, z)
        latents = torch.from_numpy(per_latent.T[:, :, None, None] + 0.1 * rng.standard_normal((z, f, hw, hw)))
        save_file({"video": latents.float().contiguous(),
                   "reference": torch.from_numpy(rng.standard_normal((z, 1, hw, hw))).float().contiguous()},
                  clip / "features" / f"latents.{vae_name}.safetensors")
        AudioFeatures(audio, "test-audio").save(clip / "features" / f"audio.{audio_backend}.npz")
        np.savez(clip / "features" / f"plan.{planner}.npz", e_con=rng.standard_normal((5 + i % 3, mllm_dim)),
                 e_tok=rng.standard_normal((5 + i % 3, mllm_dim)), backend=np.array("test-planner"))
        np.save(clip / "phys_tokens.npy", rng.standard_normal((frames, 4, 256)).astype(np.float16))
        (clip / "meta.json").write_text(json.dumps({"num_frames": frames, "fps": 25}))
        rows.append({"id": f"{i:06d}", "path": f"clips/{i:06d}", "num_frames": frames, "split": "train"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
