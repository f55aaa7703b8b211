"""PhysAvatarPipeline: reference image + speech (+ optional edit) -> talking-avatar video (§3.5, Figure 3).

    pipe = PhysAvatarPipeline.from_pretrained("path/to/pipeline")
    result = pipe.generate("me.png", "speech.wav", "out.mp4", edit="more excited")

Outputs beside OUT.mp4: OUT.plan.txt/.json/.npz (the planner's plan and embeddings), OUT.phys.npy (predicted
physical-state tokens per frame, (F, 4, 256)), OUT.json (settings, timings, colour-join report) and, with
`skeleton=True`, OUT.skeleton.mp4 (the predicted pose beside the video).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline

from physavatar.constants import SAMPLES_PER_FRAME
from physavatar.inference.sampler import GuidanceArgs, denoise_window, phys_to_frames

LONG_FORM = ("interleaved", "ar")


@dataclass
class GenerationResult:
    video: Path
    num_frames: int
    plan_text: str | None
    files: dict[str, Path] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


class PhysAvatarPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "transformer->vae"

    def __init__(self, transformer, vae, scheduler, size: int = 128, chunk_frames: int = 33,
                 audio_backend: str = "default", planner: str = "default", num_steps: int = 50,
                 audio_scale: float = 2.0):
        super().__init__()
        self.register_modules(transformer=transformer, vae=vae, scheduler=scheduler)
        # num_steps / audio_scale: this model's default denoising steps and audio guidance (paper: 50 and 2.0; a
        # small CPU model may want fewer steps and a stronger audio scale, measured in docs/demo.md)
        self.register_to_config(size=size, chunk_frames=chunk_frames, audio_backend=audio_backend, planner=planner,
                                num_steps=num_steps, audio_scale=audio_scale)
        self._audio_encoder = None
        self._planner = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> "PhysAvatarPipeline":
        """Load a local pipeline folder (written by `save_pretrained`); never reaches for a model hub."""
        from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler

        from physavatar.models.checkpoint import compute_dtype
        from physavatar.models.transformer import PhysAvatarTransformer3DModel

        path = Path(path)
        index_file = path / "model_index.json"
        if not index_file.exists():
            raise FileNotFoundError(f"{path}: not a PhysAvatar pipeline folder (no model_index.json); give the folder "
                                    "that `save_pretrained` or `physavatar train` wrote")
        index = json.loads(index_file.read_text())
        dtype = compute_dtype(dtype, device)
        transformer = PhysAvatarTransformer3DModel.from_pretrained(path / "transformer", torch_dtype=dtype)
        vae = AutoencoderKLWan.from_pretrained(path / "vae", torch_dtype=torch.float32)
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(path / "scheduler")
        pipe = cls(transformer, vae, scheduler, **{k: index[k] for k in ("size", "chunk_frames", "audio_backend",
                                                                          "planner", "num_steps", "audio_scale")
                                             if k in index})
        return pipe.to(device)

    @property
    def audio_encoder(self):
        if self._audio_encoder is None:
            from physavatar.encoders.audio import AudioEncoderConfig, load_audio_encoder

            self._audio_encoder = load_audio_encoder(AudioEncoderConfig(backend=self.config.audio_backend))
        return self._audio_encoder

    @property
    def planner(self):
        if self._planner is None and self.config.planner and self.transformer.config.context_mode != "none":
            from physavatar.encoders.planner import PlannerConfig, load_planner

            self._planner = load_planner(PlannerConfig(backend=self.config.planner))
        return self._planner

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        image,
        audio,
        out: str | os.PathLike,
        *,
        edit: str | None = None,
        num_steps: int | None = None,
        audio_scale: float | None = None,
        plan_scale: float = 1.0,
        context_scale: float = 1.1,
        shift: float | None = None,
        phys_pass: str = "audio",
        seed: int = 0,
        long_form: str = "interleaved",
        work_dir: str | os.PathLike | None = None,
        skeleton: bool = False,
        correct_joins: bool = True,
        progress: bool = True,
    ) -> GenerationResult:
        """Generate the video for `audio` (a path or 16 kHz mono float array) from `image` (a path or PIL image).

        num_steps: denoising steps; None takes the pipeline's `num_steps` (50 unless the model says otherwise).
        audio_scale: audio guidance scale; None takes the pipeline's `audio_scale` (2.0, the paper's, unless the model
        says otherwise).
        shift: timestep shift of the sampling schedule; None takes the pipeline scheduler's (the shift the model
        was trained with; Wan: 5).
        phys_pass: the last step's pass Proj_Phys (the predicted physical state) is read from: "audio", the paper's
        reading, or "no_audio" (see inference/sampler.GuidanceArgs).
        """
        from accelerate import PartialState

        from physavatar.inference.chunks import plan_autoregressive, plan_interleaved
        from physavatar.inference.long_video import WorkDir, run_plan, stitch_to_video
        from physavatar.io.audio import load_audio, validate_audio
        from physavatar.io.image import fit_image, load_image
        from physavatar.io.video import VideoWriter
        from physavatar.models.vae import LatentCodec, frames_to_tensor

        timings: dict[str, float] = {}
        clock = time.perf_counter()
        if long_form not in LONG_FORM:
            raise ValueError(f"long_form={long_form!r}; choose one of {LONG_FORM}")
        num_steps = int(self.config.num_steps if num_steps is None else num_steps)
        audio_scale = float(self.config.audio_scale if audio_scale is None else audio_scale)
        shift = float(self.scheduler.config.shift if shift is None else shift)
        # built here, before any work, so that its checks (phys_pass) fail fast
        guidance = GuidanceArgs(num_steps=num_steps, audio_scale=audio_scale, plan_scale=plan_scale,
                                context_scale=context_scale, shift=shift, phys_pass=phys_pass)
        if num_steps < 1:
            raise ValueError(f"num_steps={num_steps}: use at least 1 denoising step (50 in the paper)")
        out = _check_output(out)

        # 1. load and validate the inputs (clear errors before any heavy work)
        size = int(self.config.size)
        image = load_image(image) if isinstance(image, (str, os.PathLike)) else image
        reference = np.asarray(fit_image(image, size))
        if isinstance(audio, (str, os.PathLike)):
            wav = load_audio(audio)
        else:
            wav = validate_audio(np.asarray(audio, dtype=np.float32), 16000, name="audio")
        total_frames = math.ceil(len(wav) / SAMPLES_PER_FRAME)
        wav = np.pad(wav, (0, total_frames * SAMPLES_PER_FRAME - len(wav)))
        chunk_frames = int(self.config.chunk_frames)
        plan = (plan_interleaved(total_frames, chunk_frames) if long_form == "interleaved"
                else plan_autoregressive(total_frames, chunk_frames))

        # 2. audio features per chunk window (silence past the end). Each window is encoded on its own, exactly
        # as `physavatar extract` encodes a training clip: Whisper attends over its whole input, so features of
        # a window cut from the whole speech differ from those the model was trained on (the demo model's later
        # chunks lost 4-5 dB PSNR that way; docs/demo.md "How good it is").
        padded_frames = max(c.window[1] for c in plan.chunks)
        padded = np.pad(wav, (0, padded_frames * SAMPLES_PER_FRAME - len(wav)))
        features = {}
        for a, b in (c.window for c in plan.chunks):
            window_audio = padded[a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME]
            features[a, b] = self.audio_encoder.encode(window_audio, num_frames=b - a, name="audio").features
        timings["audio_features_s"] = time.perf_counter() - clock

        # 3. the planner's plan (its text is always saved beside the video)
        files: dict[str, Path] = {}
        plan_text, plan_tensors = None, None
        device, dtype = self.transformer.device, self.transformer.dtype
        if self.planner is not None:
            planned = self.planner.plan(image.convert("RGB"), wav[: 30 * 16000], edit=edit)
            plan_text = planned.text
            saved = planned.save(out.parent, stem=f"{out.stem}.plan")
            files.update({f"plan_{k}": v for k, v in saved.items()})
            plan_tensors = tuple(torch.from_numpy(x).float()[None].to(device, dtype) for x in (planned.e_con,
                                                                                               planned.e_tok))
        timings["plan_s"] = time.perf_counter() - clock - sum(timings.values())

        # 4. VACE context pieces: the reference latent and E(zeros) for one window
        codec = LatentCodec(self.vae)
        reference_latent = codec.encode(frames_to_tensor(reference[None])).to(device, dtype)
        zero_latents = codec.encode(torch.zeros(1, 3, chunk_frames, size, size)).to(device, dtype)
        # this call's sampling schedule: the pipeline's scheduler with the requested shift
        scheduler = type(self.scheduler).from_config(self.scheduler.config, shift=shift)
        plan_as_text = self.transformer.config.context_mode == "t5"
        in_place = self.transformer.config.reference_every_frame  # False in configs saved before it

        def generate_window(request):
            from physavatar.models.vae import (control_latents, known_frames_context, known_frames_latents,
                                               tensor_to_frames)

            chunk = request.chunk
            mask = torch.from_numpy(request.frame_mask)[None]
            if request.known is None:
                control = control_latents(zero_latents, zero_latents, mask, reference_latent, in_place)
            else:
                known = known_frames_latents(codec, frames_to_tensor(request.known), mask)
                control = known_frames_context(known, mask, reference_latent, zero_latents, in_place)
            generator = torch.Generator().manual_seed(seed * 100_003 + chunk.index)
            latents, phys = denoise_window(
                self.transformer, scheduler, shape=(1, *reference_latent.shape[1:2], zero_latents.shape[2] + 1,
                                                         *zero_latents.shape[3:]),
                control=control.to(device, dtype),
                audio=torch.from_numpy(features[chunk.window])[None].to(device, dtype),
                plan=plan_tensors, guidance=guidance, generator=generator, plan_as_text=plan_as_text)
            frames = tensor_to_frames(codec.decode(latents))[0]
            tokens = (phys_to_frames(phys, chunk_frames).cpu().numpy() if phys is not None
                      else np.zeros((chunk_frames, 4, 256), np.float32))
            return frames, tokens

        # 5. the chunks: pass 1 (odd) then pass 2 (even), spread over processes when launched with several
        state = PartialState()
        job = {"image": hashlib.sha256(reference.tobytes()).hexdigest(),
               "audio": hashlib.sha256(wav.tobytes()).hexdigest(),
               "frames": total_frames, "edit": edit, "steps": num_steps, "audio_scale": audio_scale,
               "plan_scale": plan_scale, "context_scale": context_scale, "seed": seed, "long_form": long_form,
               "phys_pass": phys_pass, "model": str(self.transformer.config.get("_name_or_path", ""))}
        work = WorkDir(work_dir or out.parent / f".{out.stem}.work", job)
        run_plan(plan, work, generate_window, (size, size), rank=state.process_index,
                 world_size=state.num_processes, barrier=state.wait_for_everyone, progress=progress)
        timings["chunks_s"] = time.perf_counter() - clock - sum(timings.values())
        if not state.is_main_process:
            return GenerationResult(out, total_frames, plan_text)

        # 6. stream the chunks into the mp4 (input audio muxed in); physical-state tokens beside it
        phys_parts, skeleton_writer = [], None
        if skeleton:
            skeleton_writer = VideoWriter(out.with_name(f"{out.stem}.skeleton.mp4"), audio=wav)

        def on_frames(frames, phys):
            phys_parts.append(phys)
            if skeleton_writer is not None:
                from physavatar.physstate import skeleton_video

                skeleton_writer.write(np.concatenate([frames, skeleton_video(tokens=phys, size=size)], axis=2))

        try:
            with VideoWriter(out, audio=wav) as writer:
                joins = stitch_to_video(plan, work, writer, correct_joins=correct_joins, on_frames=on_frames)
            if skeleton_writer is not None:
                skeleton_writer.close()
                files["skeleton"] = out.with_name(f"{out.stem}.skeleton.mp4")
        except BaseException:
            if skeleton_writer is not None:
                skeleton_writer.abort()
            raise
        phys_path = out.with_name(f"{out.stem}.phys.npy")
        np.save(phys_path, np.concatenate(phys_parts)[:total_frames].astype(np.float16))
        files["phys"] = phys_path
        timings["write_s"] = time.perf_counter() - clock - sum(timings.values())
        report = {"frames": total_frames, "shift": shift, "sigmas": [round(float(x), 5) for x in scheduler.sigmas], "chunks": len(plan.chunks), "passes": plan.num_passes,
                  "long_form": long_form, "timings": timings, "joins": joins, **{k: v for k, v in job.items()
                                                                                  if k not in ("image", "audio")}}
        from physavatar.io.atomic import atomic_write

        with atomic_write(out.with_suffix(".json"), "w") as f:
            json.dump(report, f, indent=1)
        files["report"] = out.with_suffix(".json")
        return GenerationResult(out, total_frames, plan_text, files, report)


def _check_output(out: str | os.PathLike) -> Path:
    """Create a missing output folder (documented) and fail now, not after generating, if it is not writable."""
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
        raise ValueError(f"{out}: give an output video path ending in .mp4")
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give a file path such as {out / 'avatar.mp4'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK):
        raise PermissionError(f"{out.parent}: folder is not writable; choose another --out")
    return out
