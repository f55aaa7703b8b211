"""Can a trained model hear? The health of its audio projector (Proj_aud) and how much the audio moves its output.

    python benchmarks/probe_audio_projector.py --model runs/demo/pipeline --data data/world --vae-name vae_world
    python benchmarks/probe_audio_projector.py --model A --model B ...   # several models, the same clips and noise

Two measurements on world test clips (their stored audio features, latents and plan):
  projector  Proj_aud's hidden pre-activations (before the GELU) over the clips' audio: mean, the share of
             values above 0, how many hidden units ever rise above -1 (a unit that never does passes ~nothing,
             the GELU being ~0 below -3), how far apart the audio tokens of different clips are (mean
             distance) against their size, the same for the features, and the size of the "no audio" token. A
             projector that died gives every sound the same token (its output bias): the model cannot hear,
             whatever the rest of it learned.
  output     |v(audio) - v(no audio)| / |v(audio)| and |v(audio) - v(another clip's audio)| / |v(audio)| of the
             transformer's velocity at noise levels 0.9 / 0.6 / 0.3 (the clip's latents noised with one fixed
             noise). Audio guidance scales the first difference; where both are ~0 no scale brings lips.
~1 min per model on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SIGMAS = (0.9, 0.6, 0.3)  # noise levels at which the audio's effect on the velocity is measured


def spread_and_norm(x) -> dict:
    """Mean distance between the clips' vectors and their mean norm (x: clips, ..., C)."""
    flat = x.flatten(1)
    spread = (flat[:, None] - flat[None]).norm(dim=-1).sum() / (len(flat) * (len(flat) - 1))
    return {"between_clips": round(float(spread), 4), "norm": round(float(flat.norm(dim=-1).mean()), 4)}


def probe(model: str, data: str, vae_name: str, clips: int) -> dict:
    import torch

    from physavatar.data.dataset import ClipDataset
    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.models.vae import LatentCodec, control_latents

    torch.set_grad_enabled(False)
    pipe = PhysAvatarPipeline.from_pretrained(model)
    transformer = pipe.transformer.float()
    frames = int(pipe.config.chunk_frames)
    dataset = ClipDataset(data, num_frames=frames, split="test", vae_name=vae_name)
    samples = [dataset[i] for i in range(0, len(dataset), max(1, len(dataset) // clips))[:clips]]
    if len(samples) < 2:
        raise SystemExit(f"{data}: the probe compares clips; its test split has {len(dataset)} (give a world with 2+)")

    proj = transformer.audio_proj
    features = torch.stack([s.audio for s in samples]).float()
    hidden = proj.pre_activations(features)
    tokens = proj(features)
    report = {"model": model, "hidden_norm": proj.hidden_norm is not None, "projector": {
        "pre_activation_mean": round(float(hidden.mean()), 3),
        "share_above_0": round(float((hidden > 0).float().mean()), 5),
        "units_ever_above_-1": f"{int((hidden.amax((0, 1)) > -1).sum())} of {hidden.shape[-1]}",
        "features": spread_and_norm(features), "tokens": spread_and_norm(tokens),
        "mask_token_norm": round(float(transformer.audio_mask_embed.norm()), 4)}}

    codec = LatentCodec(pipe.vae)
    empty = codec.encode(torch.zeros(1, 3, frames, int(pipe.config.size), int(pipe.config.size)))
    scales = torch.full((len(transformer.config.vace_layers),), 1.1)
    rows = {f"sigma_{sigma}": {"no_audio": [], "other_audio": []} for sigma in SIGMAS}
    for i, sample in enumerate(samples):
        other = samples[(i + 1) % len(samples)].audio  # another person's speech, the same length
        clean = torch.cat([sample.reference, sample.latents], 1)[None].float()
        noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(i))
        control = control_latents(empty, empty, torch.ones(1, frames), sample.reference[None],
                                  transformer.config.reference_every_frame)
        plan = {"mllm_hidden_states": sample.e_con[None].float(), "mllm_token_embeds": sample.e_tok[None].float()} \
            if transformer.config.context_mode == "mllm" else {}
        for sigma in SIGMAS:
            noisy = (1 - sigma) * clean + sigma * noise
            out = {}
            for name, audio, heard in (("audio", sample.audio, 1), ("no_audio", sample.audio, 0),
                                       ("other_audio", other, 1)):
                out[name] = transformer(
                    hidden_states=noisy, timestep=torch.tensor([sigma * 1000.0]), control_hidden_states=control,
                    control_hidden_states_scale=scales, audio_features=audio[None].float(),
                    audio_mask=torch.full((1, clean.shape[2] - 1), heard), num_reference_latents=1,
                    **plan).sample[:, :, 1:]
            for name in ("no_audio", "other_audio"):
                rows[f"sigma_{sigma}"][name].append(float((out["audio"] - out[name]).norm() / out["audio"].norm()))
    report["output_change"] = {level: {name: round(sum(v) / len(v), 5) for name, v in row.items()}
                               for level, row in rows.items()}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a pipeline folder (repeat to compare)")
    parser.add_argument("--data", default="data/world", help="world dataset with extracted features (test split)")
    parser.add_argument("--vae-name", default="vae_world", help="the latents' name of the pipelines' VAE")
    parser.add_argument("--clips", type=int, default=4, help="test clips (at least 2)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    reports = []
    for model in args.model:
        reports.append(probe(model, args.data, args.vae_name, args.clips))
        print(json.dumps(reports[-1], indent=1), flush=True)
    if args.json:
        from physavatar.io.atomic import atomic_write

        with atomic_write(args.json, "w") as f:
            json.dump(reports, f, indent=1)


if __name__ == "__main__":
    main()
