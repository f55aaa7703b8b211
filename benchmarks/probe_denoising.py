"""How well a demo transformer denoises in one step, per noise level, on held-out world clips (stored features).

    python benchmarks/probe_denoising.py --model runs/demo/pipeline --data data/world --vae-name vae_world
    python benchmarks/probe_denoising.py --model A --model B ...   # the same clips, noise and noise levels

For each test clip and noise level sigma: x_t = (1 - sigma) x0 + sigma noise (x0 = the reference latent, then the
clip's latents, as in training), one conditional pass (audio, plan, VACE context as the model was trained with),
x0_hat = x_t - sigma v. Printed per sigma: the latents' mean squared error (unit-variance latents) and the PSNR of
the decoded x0_hat against the clip decoded from its own latents (the truth through the VAE, so the VAE's own loss
does not count). At sigma = 1 the prediction is the model's mean video given only the conditions: what it carries
over from the reference, audio and plan; lower sigmas show how much detail it adds. "still" is the clip's
reference image repeated for every frame: the PSNR of not moving at all. Faster than sampling a whole window
(bench_demo_windows.py), and free of the sampler: ~1 min for 8 clips on 2 cores per model.

Also per sigma, over the clips in which the truth raises a hand, `hands`: the skin share in the raised hands' boxes
of the decoded x0_hat (evaluation/world_quality.hand_skin; the truth through the VAE: `truth_vae_hands`). Where x_t
still shows a raised hand (low sigma) a model that can draw one keeps it; where it pulls the hand back to the
resting pose, drawing is what it lacks, not deciding when to gesture.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from bench_demo_windows import add_model_and_clip_args, model_vae_pairs, psnr

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SIGMAS = (0.2, 0.5, 0.8, 0.95, 1.0)


def probe(model: str, data: str, vae_name: str, clips: int, sigmas: tuple[float, ...], seed: int) -> dict:
    import torch

    from physavatar.data.dataset import ClipDataset
    from physavatar.evaluation.world_quality import hand_skin
    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.models.vae import LatentCodec, control_latents, tensor_to_frames

    pipe = PhysAvatarPipeline.from_pretrained(model)
    transformer, codec = pipe.transformer.float(), LatentCodec(pipe.vae)
    if transformer.config.context_mode != "mllm":
        raise SystemExit(f"{model}: context_mode {transformer.config.context_mode!r}; this probe feeds the plan as the "
                         "demo models take it ('mllm')")
    frames, size = int(pipe.config.chunk_frames), int(pipe.config.size)
    empty = codec.encode(torch.zeros(1, 3, frames, size, size))  # the VACE context of "no frame known"
    scales = torch.full((len(transformer.config.vace_layers),), 1.1)  # the pipeline's context scale
    dataset = ClipDataset(data, num_frames=frames, split="test", vae_name=vae_name)
    picked = list(range(0, len(dataset), max(1, len(dataset) // clips)))[:clips]
    rows = {sigma: {"mse": [], "psnr": [], "hands": []} for sigma in sigmas}
    still, truth_hands = [], []
    for index in picked:
        sample = dataset[index]
        x0 = torch.cat([sample.reference, sample.latents], 1)[None].float()
        control = control_latents(empty, empty, torch.ones(1, frames), sample.reference[None].float(),
                                  transformer.config.reference_every_frame)
        with torch.no_grad():
            truth = tensor_to_frames(codec.decode(sample.latents[None].float()))[0]
        reference = np.asarray(Image.open(Path(sample.clip_dir) / "reference.png").convert("RGB"))
        still.append(psnr(np.broadcast_to(reference, truth.shape), truth))
        meta = json.loads((Path(sample.clip_dir) / "meta.json").read_text())
        keypoints = np.load(Path(sample.clip_dir) / "keypoints.npy")

        def hands(video: np.ndarray) -> np.ndarray:
            return hand_skin(video, keypoints, meta["identity"]["appearance"]["skin"],
                             meta["identity"]["framing"]["unit"])

        in_truth = hands(truth)
        raised = np.isfinite(in_truth).any()
        if raised:
            truth_hands.append(float(np.nanmean(in_truth)))
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + index))
        for sigma in sigmas:
            x_t = (1 - sigma) * x0 + sigma * noise
            with torch.no_grad():
                v = transformer(hidden_states=x_t, timestep=torch.tensor([sigma * 1000.0]),
                                control_hidden_states=control, control_hidden_states_scale=scales,
                                audio_features=sample.audio[None].float(), audio_mask=torch.ones(1, x0.shape[2] - 1),
                                mllm_hidden_states=sample.e_con[None].float(),
                                mllm_token_embeds=sample.e_tok[None].float(), num_reference_latents=1).sample
                x0_hat = (x_t - sigma * v)[:, :, 1:]
                decoded = tensor_to_frames(codec.decode(x0_hat))[0]
            rows[sigma]["mse"].append(float(((x0_hat - x0[:, :, 1:]) ** 2).mean()))
            rows[sigma]["psnr"].append(psnr(decoded, truth))
            if raised:
                rows[sigma]["hands"].append(float(np.nanmean(hands(decoded))))
    summary = {f"sigma_{s}": {k: round(float(np.mean(v)), 3) if v else None for k, v in r.items()}
               for s, r in rows.items()}
    return {"model": model, "clips": len(picked), "still_psnr": round(float(np.mean(still)), 2),
            "truth_vae_hands": round(float(np.mean(truth_hands)), 3) if truth_hands else None,
            "hand_clips": len(truth_hands), "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_and_clip_args(parser, clips=8)
    parser.add_argument("--sigmas", default=",".join(map(str, SIGMAS)), help="noise levels, comma-separated")
    parser.add_argument("--seed", type=int, default=0, help="noise seed, the same for every model")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    pairs = model_vae_pairs(parser, args)
    sigmas = tuple(float(s) for s in args.sigmas.split(","))
    if not all(0.0 < s <= 1.0 for s in sigmas):
        parser.error(f"--sigmas {args.sigmas}: each must be in (0, 1]")
    reports = []
    for model, vae_name in pairs:
        report = probe(model, args.data, vae_name, args.clips, sigmas, args.seed)
        reports.append(report)
        cells = "  ".join(f"{k[6:]}: {v['mse']:.3f} / {v['psnr']:.1f} dB / {v['hands']}"
                          for k, v in report["summary"].items())
        print(f"{model}  (sigma: latent MSE / PSNR / hands)  {cells}  still: {report['still_psnr']:.1f} dB; hands "
              f"through the VAE {report['truth_vae_hands']} ({report['hand_clips']} clips)", flush=True)
    if args.json:
        from physavatar.io.atomic import atomic_write

        with atomic_write(args.json, "w") as f:
            json.dump(reports, f, indent=1)


if __name__ == "__main__":
    main()
