"""Lip sync and appearance of a demo pipeline on single windows of held-out world clips, with their stored features.

    python benchmarks/bench_demo_windows.py --model runs/demo/pipeline --data data/world --vae-name vae_world
    python benchmarks/bench_demo_windows.py --model A --model B ...   # the same clips and noise for each

bench_demo.py measures the whole pipeline on 4 new sentences and voices, where a lip-sync correlation is noisy
(an untrained model scores 0.2). This one generates one 33-frame window for each of N test clips (people never
trained on) from the clip's own reference latent, audio features and plan (`physavatar extract`; `--vae-name`
names the latents of the pipeline's VAE), so differences between models come from the transformer and its
VAE alone. Per clip: the correlation of the generated mouth darkness with the truth's
(evaluation/world_quality.mouth_darkness), the mean darkness in the frames where the truth's mouth is open /
closed (above / below its median), whole-frame PSNR to the truth, the hands (`hands`: the share of skin-coloured
pixels in the boxes of the hands the truth raises, evaluation/world_quality.hand_skin; over the clips where a hand
is raised), and the same mouth and hand figures for the truth passed through the pipeline's VAE (what any model in
that latent space can show; the hands also for the reference image held still, the floor). 12 clips take ~4 min
on 2 cores per model. On a world of version 4 the figures are also given for the clips of phrases and pauses and the
clips of running speech apart (`by_speech`), and each model after the first is paired with the first, clip by clip
(`paired_with_first`: mean difference and its standard error).

--through-pipeline generates each window with `PhysAvatarPipeline.generate` from the clip's own reference.png and
audio.wav instead (reference, audio features and plan encoded afresh, the mp4 written and read back; one clip =
one chunk, the same noise when --seed is 0): the same figures up to the mp4's compression, unless the pipeline's path
differs from the features the model was trained on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_demo import sem, write_report  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def measure(model: str, data: str, vae_name: str, clips: int, audio_scale: float | None, seed: int,
            through_pipeline: bool = False, keep_frames: int = 0) -> dict:
    """The report of one model; with keep_frames, also (under "_frames") the truth and the generated frames of the
    first `keep_frames` clips in which the truth raises a hand, for a sheet."""
    import shutil
    import tempfile

    import torch
    from PIL import Image

    from physavatar.data.dataset import ClipDataset
    from physavatar.evaluation.world_quality import hand_skin, lip_sync, mouth_darkness, pause_frames
    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.inference.sampler import GuidanceArgs, denoise_window
    from physavatar.io.audio import load_audio
    from physavatar.io.video import read_video
    from physavatar.models.vae import LatentCodec, control_latents, frames_to_tensor, tensor_to_frames

    pipe = PhysAvatarPipeline.from_pretrained(model)
    codec = LatentCodec(pipe.vae)
    # the pipeline's defaults (PhysAvatarPipeline.generate)
    audio_scale = float(pipe.config.audio_scale if audio_scale is None else audio_scale)
    guidance = GuidanceArgs(num_steps=int(pipe.config.num_steps), audio_scale=audio_scale,
                            plan_scale=1.0, context_scale=1.1, shift=float(pipe.scheduler.config.shift))
    dtype = pipe.transformer.dtype
    frames, size = int(pipe.config.chunk_frames), int(pipe.config.size)
    empty = codec.encode(torch.zeros(1, 3, frames, size, size))  # the VACE context of "no frame known"
    dataset = ClipDataset(data, num_frames=frames, split="test", vae_name=vae_name)
    picked = list(range(0, len(dataset), max(1, len(dataset) // clips)))[:clips]
    work = Path(tempfile.mkdtemp(prefix="bench_demo_windows_"))
    rows, kept = [], {}
    for index in picked:
        sample = dataset[index]
        clip_dir = Path(sample.clip_dir)
        truth = read_video(clip_dir / "video.mp4")
        with torch.no_grad():
            if through_pipeline:
                out = work / f"{clip_dir.name}.mp4"
                pipe.generate(str(clip_dir / "reference.png"), str(clip_dir / "audio.wav"), out, seed=seed,
                              audio_scale=audio_scale, progress=False)
                generated = read_video(out)[: len(truth)]
            else:
                control = control_latents(empty, empty, torch.ones(1, frames), sample.reference[None],
                                          pipe.transformer.config.reference_every_frame)
                scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
                latents, _ = denoise_window(
                    pipe.transformer, scheduler, shape=(1, *sample.reference.shape[:1], 1 + sample.latents.shape[1],
                                                        *sample.latents.shape[2:]),
                    control=control.to(dtype), audio=sample.audio[None].to(dtype),
                    plan=(sample.e_con[None].to(dtype), sample.e_tok[None].to(dtype)), guidance=guidance,
                    generator=torch.Generator().manual_seed(seed))
                # the reference latent decodes first
                generated = tensor_to_frames(codec.decode(latents))[0][-len(truth):]
            through_vae = tensor_to_frames(codec.decode(codec.encode(frames_to_tensor(truth))))[0]
        meta = json.loads((clip_dir / "meta.json").read_text())
        keypoints, unit = np.load(clip_dir / "keypoints.npy"), float(meta["identity"]["framing"]["unit"])
        skin = meta["identity"]["appearance"]["skin"]
        true_dark = mouth_darkness(truth, keypoints, unit)
        is_open = true_dark > np.median(true_dark)
        # speech only (pauses of >= 5 frames left out): do the lips follow the syllables, not just speech vs silence?
        speech = ~pause_frames(load_audio(clip_dir / "audio.wav"), len(truth))
        running = (meta.get("speech") or {}).get("running")
        kind = {True: "running", False: "pauses"}.get(running)  # None before world version 4
        row = {"clip": clip_dir.name, "speech": kind, "psnr": psnr(generated, truth)}
        for name, video in (("model", generated), ("truth_vae", through_vae), ("truth", truth)):
            dark = mouth_darkness(video, keypoints, unit)
            row[name] = {"corr": lip_sync(dark, true_dark)["corr"],
                         "speech_corr": lip_sync(dark[speech], true_dark[speech])["corr"],
                         "open": float(dark[is_open].mean()), "closed": float(dark[~is_open].mean())}
            shares = hand_skin(video, keypoints, skin, unit)
            row[name]["hands"] = float(np.nanmean(shares)) if np.isfinite(shares).any() else None
        still = np.asarray(Image.open(clip_dir / "reference.png").convert("RGB"))[None].repeat(len(truth), 0)
        shares = hand_skin(still, keypoints, skin, unit)
        row["still_hands"] = float(np.nanmean(shares)) if np.isfinite(shares).any() else None
        if row["truth"]["hands"] is not None and len(kept) < keep_frames:
            kept[clip_dir.name] = (truth, generated)
        rows.append(row)
        print(f"  {row['clip']}: corr {row['model']['corr']:+.2f}, open / closed {row['model']['open']:.3f} / "
              f"{row['model']['closed']:.3f}, PSNR {row['psnr']:.1f} dB", flush=True)
    shutil.rmtree(work, ignore_errors=True)

    summary = summarize(rows)
    kinds = sorted({r["speech"] for r in rows if r["speech"]})
    if len(kinds) > 1:
        summary["by_speech"] = {kind: summarize([r for r in rows if r["speech"] == kind]) for kind in kinds}
    return {"model": model, "vae_name": vae_name, "audio_scale": audio_scale, "clips": len(rows),
            "through_pipeline": through_pipeline, "summary": summary, "per_clip": rows,
            **({"_frames": kept} if keep_frames else {})}


def write_sheet(reports: list[dict], path: str, frames=(6, 14, 22, 30)) -> None:
    """Rows: the kept clips; in each, the frames `frames` of the truth, then of every model, left to right."""
    from PIL import Image

    rows = []
    for clip, (truth, _) in reports[0]["_frames"].items():
        videos = [truth] + [r["_frames"][clip][1] for r in reports]
        rows.append(np.concatenate([np.concatenate([v[i] for i in frames], 1) for v in videos], 1))
    if rows:
        Image.fromarray(np.concatenate(rows, 0)).save(path)


def summarize(rows: list[dict]) -> dict:
    """Means over clips of the mouth figures of the model, the truth through the VAE and the truth; PSNR."""
    summary: dict = {name: {key: round(float(np.mean([r[name][key] for r in rows])), 3)
                            for key in ("corr", "speech_corr", "open", "closed")}
                     for name in ("model", "truth_vae", "truth")}  # fmt: skip
    summary["model"]["corr_sem"] = sem([r["model"]["corr"] for r in rows])
    raised = [r for r in rows if r["truth"]["hands"] is not None]
    summary["hands"] = {name: round(float(np.mean([r[name]["hands"] for r in raised])), 3) if raised else None
                        for name in ("model", "truth_vae", "truth")}
    summary["hands"]["still"] = round(float(np.mean([r["still_hands"] for r in raised])), 3) if raised else None
    summary["hands"]["clips"] = len(raised)
    summary["psnr"] = round(float(np.mean([r["psnr"] for r in rows])), 2)
    return summary


def paired(first: list[dict], other: list[dict]) -> dict:
    """Clip-by-clip differences other - first (the same clips and noise): [mean, s.e.m.], overall and by speech."""
    def diff(pairs: list[tuple[dict, dict]]) -> dict:
        out = {}
        for key in ("corr", "speech_corr"):
            d = [b["model"][key] - a["model"][key] for a, b in pairs]
            out[key] = [round(float(np.mean(d)), 3), sem(d)]
        d = [b["psnr"] - a["psnr"] for a, b in pairs]
        out["psnr"] = [round(float(np.mean(d)), 3), sem(d)]
        d = [b["model"]["hands"] - a["model"]["hands"] for a, b in pairs if a["truth"]["hands"] is not None]
        out["hands"] = [round(float(np.mean(d)), 3), sem(d)] if d else None
        return out

    pairs = list(zip(first, other))
    if [a["clip"] for a, _ in pairs] != [b["clip"] for _, b in pairs]:
        raise ValueError("the two reports hold different clips; pair only runs of the same --data and --clips")
    result = {"all": diff(pairs)}
    for kind in sorted({a["speech"] for a, _ in pairs if a["speech"]}):
        result[kind] = diff([(a, b) for a, b in pairs if a["speech"] == kind])
    return result


def add_model_and_clip_args(parser: argparse.ArgumentParser, clips: int) -> None:
    """--model / --vae-name pairs and the test clips: shared with the other scripts that compare demo pipelines."""
    parser.add_argument("--model", action="append", required=True,
                        help="a pipeline folder (repeat to compare several on the same clips)")
    parser.add_argument("--vae-name", action="append", required=True,
                        help="the latents' name of each --model's VAE (its folder name at `physavatar extract`), "
                             "in the same order")
    parser.add_argument("--data", default="data/world", help="world dataset with extracted features (test split)")
    parser.add_argument("--clips", type=int, default=clips, help="test clips, evenly spread over the split")


def model_vae_pairs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[tuple[str, str]]:
    if len(args.vae_name) != len(args.model):
        parser.error(f"{len(args.model)} --model but {len(args.vae_name)} --vae-name: give one per model")
    return list(zip(args.model, args.vae_name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_and_clip_args(parser, clips=12)
    parser.add_argument("--audio-scale", type=float,
                        help="audio guidance scale (default: each model's own, its model_index.json audio_scale; "
                        "paper: 2)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed, the same for every clip and model")
    parser.add_argument("--through-pipeline", action="store_true",
                        help="generate with PhysAvatarPipeline.generate from each clip's reference.png and audio.wav "
                        "(features encoded afresh) instead of its stored features")
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--sheet", help="also write a PNG of the first 5 clips in which the truth raises a hand: "
                        "frames 6, 14, 22 and 30 of the truth, then of each --model")
    args = parser.parse_args()
    reports = []
    for model, vae_name in model_vae_pairs(parser, args):
        print(model, flush=True)
        reports.append(measure(model, args.data, vae_name, args.clips, args.audio_scale, args.seed,
                               args.through_pipeline, keep_frames=5 if args.sheet else 0))
        if len(reports) > 1:
            reports[-1]["paired_with_first"] = paired(reports[0]["per_clip"], reports[-1]["per_clip"])
        print(json.dumps({k: v for k, v in reports[-1].items() if k in ("summary", "paired_with_first")}), flush=True)
    if args.sheet:
        write_sheet(reports, args.sheet)
    write_report([{k: v for k, v in r.items() if k != "_frames"} for r in reports], args.json)


if __name__ == "__main__":
    main()
