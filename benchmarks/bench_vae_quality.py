"""How much of a world video comes back through VAEs: `python benchmarks/bench_vae_quality.py --vae A --vae B`.

The VAE is the ceiling of every generated frame: nothing a diffusion model draws in its latent space can look
better than the truth passed through it. For new world people (portrait framing unless --framing says otherwise)
speaking the world's English speech and, when espeak-ng is installed, bench_demo.py's held-out sentences, each
VAE encodes and decodes the truth, and the benchmark prints:
  psnr5 / face5      PSNR (dB) of a 5-frame window, whole frame / face box (what the VAE was trained on)
  psnr33 / face33    the same for a whole 33-frame chunk (colour drift over a chunk shows here)
  mouth_world        lag-0 correlation of the mouth darkness (evaluation/world_quality) through the VAE with
                     the truth's, on the world speech, chunk by chunk as the pipeline decodes it
  mouth_sentences    the same on the held-out sentences (continuous speech, harder): bench_demo_speech.py's
                     `vae_corr`, the most any model in this latent space can reach on its lip measure
  thumbnail_psnr5    (printed once) the frames shrunk to 16 x 16 and blown up again (bicubic): a VAE below this
                     keeps less than a thumbnail of 768 numbers per frame
and, with --faces PNG, face crops (x3) of the first three people: truth, then each VAE. ~1 min per VAE on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = ((a.astype(np.float32) - b.astype(np.float32)) / 255) ** 2
    mse = d.mean() if mask is None else (d * mask[..., None]).sum() / (3 * mask.sum())
    return 10 * math.log10(1 / max(mse, 1e-12))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae", action="append", default=None, help="an AutoencoderKLWan folder or a pipeline "
                        "folder (its vae/); repeat to compare (default: the shipped demo model's)")
    parser.add_argument("--people", type=int, default=6, help="new world people, each with world speech and (with "
                        "espeak-ng) one held-out sentence (max 6)")
    parser.add_argument("--seconds", type=float, default=2.64, help="length of each world-speech case")
    parser.add_argument("--framing", default="portrait", help="world framing of the people (portrait, wide)")
    parser.add_argument("--faces", default=None, help="also write face crops of three people to this PNG")
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)

    import torch
    from PIL import Image

    from bench_demo import IDENTITY_SEEDS, SENTENCES, speech
    from bench_demo_speech import TRAINING_VOICES
    from physavatar.commands.generate import default_model_dir
    from physavatar.constants import FPS
    from physavatar.evaluation.world_quality import lip_sync, mouth_darkness
    from physavatar.models.vae import LatentCodec, frames_to_tensor, tensor_to_frames
    from physavatar.physstate.layout import FACE, face_mask
    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity
    from physavatar.world.speech import make_speech
    from physavatar.world.voices import available_voices

    torch.set_grad_enabled(False)
    folders = [Path(v) for v in (args.vae or [default_model_dir()])]
    folders = [f / "vae" if (f / "vae").is_dir() else f for f in folders]
    codecs = {str(f): LatentCodec.from_pretrained(f) for f in folders}
    people = min(args.people, len(SENTENCES))
    sentences = bool(available_voices())

    def through(codec, frames: np.ndarray, chunk: int = 33) -> np.ndarray:
        """Chunk by chunk, as the pipeline decodes (a tail shorter than 1 + 4k frames is kept as it is)."""
        out = []
        for a in range(0, len(frames), chunk):
            piece = frames[a : a + chunk]
            k = (len(piece) - 1) // 4 * 4 + 1
            rec = tensor_to_frames(codec.decode(codec.encode(frames_to_tensor(piece[:k][None]))))[0]
            out.append(np.concatenate([rec, piece[k:]]))
        return np.concatenate(out)

    cases = []
    for i in range(people):
        identity = make_identity(IDENTITY_SEEDS[i], args.framing)
        world = drive_avatar(identity, make_speech(80_000 + i, int(args.seconds * FPS), language="en").wav, clip_seed=i)
        sentence = None
        if sentences:
            sentence = drive_avatar(identity, speech(SENTENCES[i], TRAINING_VOICES[i])[0], clip_seed=i)
        cases.append((world, sentence))

    def mouth(frames: np.ndarray, clip) -> np.ndarray:
        return mouth_darkness(frames, clip.keypoints[: len(frames)], clip.identity.framing.unit)

    report: dict = {"framing": args.framing, "people": people, "seconds": args.seconds, "vaes": {}}
    thumbs, crops = [], [[] for _ in range(min(3, people))]
    for name, codec in codecs.items():
        rows = {k: [] for k in ("psnr5", "face5", "psnr33", "face33", "mouth_world", "mouth_sentences")}
        for i, (world, sentence) in enumerate(cases):
            truth = world.frames[:33]
            box = face_mask(world.keypoints[:33], truth.shape[1:3]).astype(np.float32)
            rec5, rec33 = through(codec, truth[:5]), through(codec, truth)
            rows["psnr5"].append(psnr(rec5, truth[:5]))
            rows["face5"].append(psnr(rec5, truth[:5], box[:5]))
            rows["psnr33"].append(psnr(rec33, truth))
            rows["face33"].append(psnr(rec33, truth, box))
            rows["mouth_world"].append(lip_sync(mouth(through(codec, world.frames), world),
                                                mouth(world.frames, world))["corr"])
            if sentence is not None:
                rows["mouth_sentences"].append(lip_sync(mouth(through(codec, sentence.frames), sentence),
                                                        mouth(sentence.frames, sentence))["corr"])
            if i < len(crops):
                cx, cy = np.clip(world.keypoints[0, FACE, :2].mean(0) * truth.shape[2], 24, truth.shape[2] - 24)
                cut = lambda f: np.kron(f[int(cy) - 24 : int(cy) + 24, int(cx) - 24 : int(cx) + 24],  # noqa: E731
                                        np.ones((3, 3, 1), np.uint8))
                if not crops[i]:
                    crops[i].append(cut(truth[2]))
                crops[i].append(cut(rec5[2]))
            if not report["vaes"]:  # the thumbnail baseline once
                for f in truth[:5]:
                    small = Image.fromarray(f).resize((16, 16), Image.BICUBIC).resize(f.shape[1::-1], Image.BICUBIC)
                    thumbs.append(psnr(np.asarray(small), f))
        report["vaes"][name] = {k: round(float(np.mean(v)), 3) if v else None for k, v in rows.items()}
        print(name, json.dumps(report["vaes"][name]), flush=True)
    report["thumbnail_psnr5"] = round(float(np.mean(thumbs)), 2)
    print("16x16 thumbnail, bicubic: psnr5", report["thumbnail_psnr5"])
    if not sentences:
        print("(no espeak-ng: the held-out sentences were skipped)")
    if args.faces:
        Image.fromarray(np.concatenate([np.concatenate(c, 1) for c in crops], 0)).save(args.faces)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
