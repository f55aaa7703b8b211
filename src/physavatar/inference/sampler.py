"""Denoising one generation window with classifier-free guidance (Implementation details, Figure 3).

Guidance combines up to three passes of the transformer per step:
  v = v(no audio, no plan) + s_plan (v(no audio, plan) - v(no audio, no plan)) + s_audio (v(audio, plan) - v(no audio, plan))
With s_plan = 1 (the default) the first term cancels and two passes suffice: v = v_noaudio + s_audio (v_full - v_noaudio).
"No audio" is the all-masked audio (every token the mask embedding), exactly what training drops to.
The VACE context scale (paper: 1.1) multiplies every VACE hint (`control_hidden_states_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


PHYS_PASSES = ("audio", "no_audio")  # the two passes of every step, in batch order


@dataclass
class GuidanceArgs:
    num_steps: int = 50
    audio_scale: float = 2.0
    plan_scale: float = 1.0
    context_scale: float = 1.1
    shift: float = 5.0
    # which pass of the last step Proj_Phys is read from: "audio" (the paper: inference masks no audio token) or
    # "no_audio" (every audio token masked: the case eq. 4 supervises, since its loss only counts masked positions)
    phys_pass: str = "audio"

    def __post_init__(self):
        if self.phys_pass not in PHYS_PASSES:
            raise ValueError(f"phys_pass={self.phys_pass!r}; choose one of {PHYS_PASSES}")


def combine_guidance(v_full: torch.Tensor, v_noaudio: torch.Tensor, v_none: torch.Tensor | None,
                     audio_scale: float, plan_scale: float) -> torch.Tensor:
    """The multi-condition CFG combination above (pure; tested on known values)."""
    v = v_noaudio + audio_scale * (v_full - v_noaudio)
    if v_none is not None:
        v = v + (plan_scale - 1.0) * (v_noaudio - v_none)
    return v


@torch.no_grad()
def denoise_window(
    transformer,
    scheduler,
    *,
    shape: tuple[int, ...],  # (1, z, 1 + f, h, w): reference latent first
    control: torch.Tensor,  # (1, 2z + 64, 1 + f, h, w)
    audio: torch.Tensor,  # (1, F, C_aud)
    plan: tuple[torch.Tensor, torch.Tensor] | None,  # e_con, e_tok (1, L, C) or None
    guidance: GuidanceArgs,
    generator: torch.Generator,
    plan_as_text: bool = False,  # "MLLM via T5" models take the plan as Wan's text context
    callback=None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Returns the clean latents (1, z, f, h, w) of the window and Proj_Phys at the last step (1, f, 4, 1024)."""
    device, dtype = control.device, control.dtype
    latents = torch.randn(shape, generator=generator, dtype=torch.float32).to(device)
    scheduler.set_timesteps(guidance.num_steps, device=device)
    scales = torch.full((len(transformer.config.vace_layers),), guidance.context_scale, device=device, dtype=dtype)
    use_plan_guidance = plan is not None and guidance.plan_scale != 1.0

    def context(with_plan: bool) -> dict:
        if not with_plan or plan is None:
            return {}
        if plan_as_text:
            return {"encoder_hidden_states": plan[0]}
        return {"mllm_hidden_states": plan[0], "mllm_token_embeds": plan[1]}

    phys = None
    timesteps = scheduler.timesteps
    for index, t in enumerate(timesteps):
        last = index == len(timesteps) - 1
        x = latents.to(dtype)
        # conditional and no-audio passes share one batch: same context, audio vs all-masked
        batch = dict(hidden_states=torch.cat([x, x]), timestep=t.expand(2).to(device),
                     control_hidden_states=torch.cat([control, control]), control_hidden_states_scale=scales,
                     audio_features=torch.cat([audio, audio]).to(dtype),
                     audio_mask=torch.tensor([[1], [0]], device=device).expand(2, shape[2] - 1),
                     num_reference_latents=1, return_phys=last)
        for key, value in context(True).items():
            batch[key] = torch.cat([value, value]).to(dtype)
        out = transformer(**batch)
        v_full, v_noaudio = out.sample.float().chunk(2)
        v_none = None
        if use_plan_guidance:
            v_none = transformer(hidden_states=x, timestep=t.expand(1).to(device), control_hidden_states=control,
                                 control_hidden_states_scale=scales, num_reference_latents=1).sample.float()
        if last and out.phys_tokens is not None:
            phys = out.phys_tokens[PHYS_PASSES.index(guidance.phys_pass)][None].float()
        v = combine_guidance(v_full, v_noaudio, v_none, guidance.audio_scale, guidance.plan_scale)
        latents = scheduler.step(v, t, latents, return_dict=False)[0]
        if callback is not None:
            callback(index, len(timesteps))
    return latents[:, :, 1:], phys


def phys_to_frames(phys: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(1, f, 4, 1024) per-latent predictions -> (F, 4, 256) per-frame tokens (latent 0 -> frame 0)."""
    per_frame = phys[0]  # (f, 4 frames, 1024)
    first = per_frame[0, 0:1]  # frame 0 (the 4 slots of latent 0 all mean frame 0)
    rest = per_frame[1:].reshape(-1, per_frame.shape[-1])  # frames 1..F-1 in order
    frames = torch.cat([first, rest], dim=0)[:num_frames]
    return frames.reshape(frames.shape[0], 4, -1)
