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
  detail_dark / detail_light
                     share of the variance inside the box of the eyes, nose and lips (no hair, no background;
                     each frame around its own mean colour) that comes back in a 33-frame chunk, 1 - MSE /
                     variance, for the people whose skin is dark (mean RGB below DARK_SKIN) and the others
  hands              share of skin-coloured pixels in the boxes of the hands the truth raises in the world
                     speech (evaluation/world_quality.hand_skin), over the people who raise one; the truth's own
                     figure is printed once (hands_truth)
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

CHUNK = 33  # frames the demo pipeline encodes and decodes at once (its chunk_frames)
DARK_SKIN = 110  # mean RGB of the world's two darkest skin tones (92-120) and below


def face_detail(rec: np.ndarray, truth: np.ndarray, box: np.ndarray) -> float:
    """1 - MSE / variance of frames (F, H, W, 3) inside a per-frame mask `box` (F, H, W), each frame's truth
    taken around its own mean colour in the box."""
    m = box[..., None]
    mean = (truth * m).sum((1, 2), keepdims=True) / m.sum((1, 2), keepdims=True)
    variance = (((truth - mean) * m) ** 2).sum()
    return float(1 - (((rec.astype(np.float32) - truth) * m) ** 2).sum() / variance)


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

    from bench_demo import IDENTITY_SEEDS, SENTENCES, speech, through_codec, write_report
    from bench_demo_speech import TRAINING_VOICES
    from physavatar.commands.generate import default_model_dir
    from physavatar.constants import FPS
    from physavatar.evaluation.world_quality import hand_skin, lip_sync, mouth_darkness
    from physavatar.models.vae import LatentCodec
    from physavatar.physstate.layout import FACE, box_mask, face_mask, keypoint_boxes
    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity
    from physavatar.world.speech import make_speech
    from physavatar.world.voices import available_voices

    features = slice(FACE.start + 36, FACE.stop)  # the eyes and the lips (iBUG 36-67); their box holds the nose

    torch.set_grad_enabled(False)
    folders = [Path(v) for v in (args.vae or [default_model_dir()])]
    folders = [f / "vae" if (f / "vae").is_dir() else f for f in folders]
    codecs = {str(f): LatentCodec.from_pretrained(f) for f in folders}
    people = min(args.people, len(SENTENCES))
    sentences = bool(available_voices())

    def mouth(frames: np.ndarray, clip) -> np.ndarray:
        return mouth_darkness(frames, clip.keypoints[: len(frames)], clip.identity.framing.unit)

    def hands(frames: np.ndarray, clip) -> np.ndarray:
        return hand_skin(frames, clip.keypoints, clip.identity.appearance.skin, clip.identity.framing.unit)

    def face_crop(clip):
        """A 48-px square around the first frame's face, blown up 3x."""
        size = clip.frames.shape[2]
        cx, cy = np.clip(clip.keypoints[0, FACE, :2].mean(0) * size, 24, size - 24).astype(int)
        return lambda f: np.kron(f[cy - 24 : cy + 24, cx - 24 : cx + 24], np.ones((3, 3, 1), np.uint8))

    cases, thumbs = [], []  # the truth's side of every measure, once for all VAEs
    for i in range(people):
        identity = make_identity(IDENTITY_SEEDS[i], args.framing)
        world_speech = make_speech(80_000 + i, int(args.seconds * FPS), language="en", running_p=0.0)  # version 3
        world = drive_avatar(identity, world_speech.wav, clip_seed=i)
        sentence = None
        if sentences:
            voice = TRAINING_VOICES[i % len(TRAINING_VOICES)]
            sentence = drive_avatar(identity, speech(SENTENCES[i], voice)[0], clip_seed=i)
        truth = world.frames[:CHUNK]
        cases.append({"world": world, "sentence": sentence, "truth": truth,
                      "box": face_mask(world.keypoints[:CHUNK], truth.shape[1:3]).astype(np.float32),
                      "features": box_mask(keypoint_boxes(world.keypoints[:CHUNK], features, pad=0.1),
                                           truth.shape[1:3]).astype(np.float32),
                      "mouth_world": mouth(world.frames, world),
                      "hands": hands(world.frames, world),
                      "mouth_sentence": None if sentence is None else mouth(sentence.frames, sentence),
                      "crop": face_crop(world)})
        for f in truth[:5]:
            small = Image.fromarray(f).resize((16, 16), Image.BICUBIC).resize(f.shape[1::-1], Image.BICUBIC)
            thumbs.append(psnr(np.asarray(small), f))

    report: dict = {"framing": args.framing, "people": people, "seconds": args.seconds, "vaes": {}}
    crops = [[c["crop"](c["truth"][2])] for c in cases[:3]]
    for name, codec in codecs.items():
        rows = {k: [] for k in ("psnr5", "face5", "psnr33", "face33", "mouth_world", "mouth_sentences",
                                "detail_dark", "detail_light", "hands")}
        for i, c in enumerate(cases):
            truth, box, world, sentence = c["truth"], c["box"], c["world"], c["sentence"]
            rec5, rec33 = through_codec(codec, truth[:5], CHUNK), through_codec(codec, truth, CHUNK)
            rows["psnr5"].append(psnr(rec5, truth[:5]))
            rows["face5"].append(psnr(rec5, truth[:5], box[:5]))
            rows["psnr33"].append(psnr(rec33, truth))
            rows["face33"].append(psnr(rec33, truth, box))
            dark = np.mean(world.identity.appearance.skin) < DARK_SKIN
            rows["detail_dark" if dark else "detail_light"].append(face_detail(rec33, truth.astype(np.float32),
                                                                               c["features"]))
            rec_world = through_codec(codec, world.frames, CHUNK)
            rows["mouth_world"].append(lip_sync(mouth(rec_world, world), c["mouth_world"])["corr"])
            if np.isfinite(c["hands"]).any():
                rows["hands"].append(float(np.nanmean(hands(rec_world, world))))
            if sentence is not None:
                rows["mouth_sentences"].append(lip_sync(mouth(through_codec(codec, sentence.frames, CHUNK), sentence),
                                                        c["mouth_sentence"])["corr"])
            if i < len(crops):
                crops[i].append(c["crop"](rec5[2]))
        report["vaes"][name] = {k: round(float(np.mean(v)), 3) if v else None for k, v in rows.items()}
        print(name, json.dumps(report["vaes"][name]), flush=True)
    raised = [np.nanmean(c["hands"]) for c in cases if np.isfinite(c["hands"]).any()]
    report["hands_truth"] = round(float(np.mean(raised)), 3) if raised else None
    print("truth: hands", report["hands_truth"], f"({len(raised)} of {people} people raise a hand)")
    report["thumbnail_psnr5"] = round(float(np.mean(thumbs)), 2)
    print("16x16 thumbnail, bicubic: psnr5", report["thumbnail_psnr5"])
    if not sentences:
        print("(no espeak-ng: the held-out sentences were skipped)")
    if args.faces:
        Image.fromarray(np.concatenate([np.concatenate(c, 1) for c in crops], 0)).save(args.faces)
    write_report(report, args.json)
    return report


if __name__ == "__main__":
    main()
