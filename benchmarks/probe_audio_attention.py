"""Where a trained model's audio cross-attention looks in time: per main block, the attention weight a video
latent puts on the audio token of its own latent, on its neighbours', and the uniform share.

    python benchmarks/probe_audio_attention.py --model runs/demo/pipeline --data data/world --vae-name vae_world

Runs the transformer on a few world test clips (their stored latents noised at two noise levels, their audio
and plan features) and recomputes each block's audio attention weights from its queries and keys (the
processor itself calls fused SDPA, which does not return them). A model that aligns audio with video puts far
more than the uniform share on its own latent's token; one that puts about the uniform share gives every frame
the window's average audio, which separates speech from silence but not one syllable from the next. ~1 min.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch

    from physavatar.data.dataset import ClipDataset
    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.models import audio as audio_module
    from physavatar.models.vae import LatentCodec, control_latents

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a pipeline folder")
    parser.add_argument("--data", default="data/world", help="world dataset with extracted features")
    parser.add_argument("--vae-name", default="vae_world", help="the latents' name of the pipeline's VAE")
    parser.add_argument("--clips", type=int, default=4, help="test clips")
    args = parser.parse_args()

    pipe = PhysAvatarPipeline.from_pretrained(args.model)
    transformer = pipe.transformer.float()
    dataset = ClipDataset(args.data, num_frames=int(pipe.config.chunk_frames), split="test",
                          vae_name=args.vae_name)
    weights: list[np.ndarray] = []
    processor = audio_module.AudioRopeAttnProcessor
    original = processor.__call__

    def recording(self, attn, hidden_states, encoder_hidden_states, attention_mask=None, rotary_emb=None):
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(attn.to_k(encoder_hidden_states)).unflatten(2, (attn.heads, -1))
        (q_cos, q_sin), (k_cos, k_sin) = rotary_emb
        query, key = audio_module.apply_rope(query, q_cos, q_sin), audio_module.apply_rope(key, k_cos, k_sin)
        logits = torch.einsum("blhd,bmhd->bhlm", query, key) / query.shape[-1] ** 0.5
        if attention_mask is not None:
            logits = logits.masked_fill(~attention_mask, float("-inf"))
        weights.append(torch.softmax(logits, dim=-1)[0].mean(0).numpy())  # (L_v, L_a), mean over heads
        return original(self, attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)

    processor.__call__ = recording
    codec = LatentCodec(pipe.vae)
    frames, size = int(pipe.config.chunk_frames), int(pipe.config.size)
    empty = codec.encode(torch.zeros(1, 3, frames, size, size))  # the VACE context of "no frame known"
    per_block = []
    generator = torch.Generator().manual_seed(0)
    for index in np.linspace(0, len(dataset) - 1, args.clips).astype(int):
        sample = dataset[int(index)]
        control = control_latents(empty, empty, torch.ones(1, frames), sample.reference[None],
                                  pipe.transformer.config.reference_every_frame)
        clean = torch.cat([sample.reference[None], sample.latents[None]], dim=2)
        for sigma in (0.2, 0.6):
            noisy = (1 - sigma) * clean + sigma * torch.randn(clean.shape, generator=generator)
            weights.clear()
            with torch.no_grad():
                transformer(noisy, torch.tensor([1000 * sigma]), control_hidden_states=control,
                            audio_features=sample.audio[None], mllm_hidden_states=sample.e_con[None],
                            mllm_token_embeds=sample.e_tok[None], num_reference_latents=1)
            per_block.append(np.stack(weights))  # (blocks, L_v, L_a)
    processor.__call__ = original
    mean = np.mean(per_block, axis=0)
    num_audio = mean.shape[-1]
    latents = mean.shape[1] // (num_audio + 1)  # video tokens per latent; one reference latent first
    for block, w in enumerate(mean):
        by_latent = w.reshape(num_audio + 1, latents, num_audio).mean(axis=1)[1:]  # clip latents x audio tokens
        own = np.mean(np.diag(by_latent))
        near = np.mean([by_latent[i, i + d] for i in range(num_audio) for d in (-1, 1) if 0 <= i + d < num_audio])
        print(f"block {block}: own latent's audio token {own:.3f}, neighbours {near:.3f}, uniform {1 / num_audio:.3f}")


if __name__ == "__main__":
    main()
