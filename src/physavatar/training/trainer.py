"""The PhysAvatar training loop (§3.3, §3.5): L = L_cont + λ L_disc with Algorithm 1's audio masking.

One step, for a batch of clips:
  1. x0 = [reference latent | clip latents]; σ from Wan's shifted schedule; x_t = (1-σ) x0 + σ ε; v = ε - x0
  2. audio mask and supervised latents from Algorithm 1 (or the "full" / "none" ablations); classifier-free
     guidance dropout masks all audio of some samples and drops the planner context of some steps
  3. VACE context: nothing known (audio-driven generation) or, for a share of steps, the m first and n last
     frames known (frame interpolation, what the even chunks of long-form inference need)
  4. v̂, Proj_Phys = model(...); L_cont = MSE(v̂, v) on the clip latents; L_disc = MSE on supervised latents
All randomness comes from one torch.Generator whose state is checkpointed, and data order from (seed, epoch),
so a killed run resumed from its last checkpoint continues bit for bit.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from physavatar.training.config import TrainConfig, save_train_config

log = logging.getLogger(__name__)
CHECKPOINT_RE = re.compile(r"^step_(\d{7})$")
# model keys newer than the checkpoints' model.json, with the value every checkpoint saved before them was trained with
MODEL_KEYS_ADDED_SINCE = {"reference_every_frame": False}


@dataclass
class StepLosses:
    total: float
    cont: float
    disc: float
    masked_fraction: float


def build_model(cfg: TrainConfig):
    """Base weights + LoRA (paper) when `run.base` is given; otherwise every weight trains from scratch."""
    from physavatar.models.checkpoint import from_base
    from physavatar.models.lora import add_lora

    args = cfg.model_args()
    if cfg.run.base:
        model = from_base(cfg.run.base, args)
        if cfg.run.use_lora:
            add_lora(model, cfg.lora)
    else:
        torch.manual_seed(cfg.run.seed)
        model = args.build()
    if cfg.run.init_fresh_audio_proj and not cfg.run.init_from:
        raise ValueError("run.init_fresh_audio_proj restarts the audio projector of a loaded model: give run.init_from "
                         "too (a fresh model's projector is fresh already)")
    if cfg.run.init_from:
        load_init_weights(model, cfg.run.init_from)
        if cfg.run.init_fresh_audio_proj:
            restart_audio_projector(model)
    return model


def restart_audio_projector(model) -> None:
    """Proj_aud afresh with a zero output layer: the audio tokens start as the loaded output bias (what a dead
    projector passed on anyway), so the rest of the model sees no jump and the projector's gradients flow again."""
    with torch.no_grad():
        model.audio_proj.proj_in.reset_parameters()
        model.audio_proj.proj_out.weight.zero_()
    log.info("audio projector restarted (output layer zero)")


def load_init_weights(model, path: str | Path) -> None:
    """Set every trainable weight from a training checkpoint (trainable.safetensors) or an exported transformer
    folder (diffusion_pytorch_model*.safetensors). Only the weights: the run itself starts at step 0."""
    from safetensors.torch import load_file

    path = Path(path)
    files = [path / "trainable.safetensors"] if (path / "trainable.safetensors").exists() else \
        sorted(path.glob("diffusion_pytorch_model*.safetensors"))
    if not files:
        raise FileNotFoundError(f"run.init_from={path}: no trainable.safetensors (a training checkpoint folder) or "
                                "diffusion_pytorch_model*.safetensors (an exported transformer folder) there")
    saved: dict[str, torch.Tensor] = {}
    for file in files:
        saved.update(load_file(file))
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(saved))
    wrong = sorted(n for n in params if n in saved and saved[n].shape != params[n].shape)
    if missing or wrong:
        raise ValueError(f"run.init_from={path} does not fit this model: {len(missing)} trainable weights missing "
                         f"(e.g. {missing[:2]}), {len(wrong)} of another shape (e.g. {wrong[:2]}); it must come "
                         "from a run of the same model config (a merged LoRA export fits only a run without LoRA)")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(saved[name].to(param.dtype))
    log.info("trainable weights initialised from %s", path)


def trainable_state_dict(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


class Trainer:
    def __init__(self, cfg: TrainConfig, *, progress: bool = True):
        from accelerate import Accelerator, DistributedDataParallelKwargs

        from physavatar.data.dataset import ClipDataset

        self.cfg = cfg
        self.progress = progress
        self.out_dir = Path(cfg.run.out_dir)
        device = cfg.run.device
        use_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
        precision = cfg.run.mixed_precision
        if precision == "auto":
            precision = "no" if use_cpu else "bf16"  # bf16 compute on a CPU is ~200x slower
        # Some trainable weights get no gradient on some steps: Wan's T5 text embedder whenever the planner is
        # the context, the planner's projector when CFG dropout drops the context. DDP must not wait for them
        # (without this, multi-process training stops at the first step with "parameters that were not used").
        ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
        self.accelerator = Accelerator(cpu=use_cpu, mixed_precision=precision, kwargs_handlers=[ddp],
                                       gradient_accumulation_steps=cfg.optim.grad_accum)
        for key in ("face_weight", "mouth_weight", "hand_weight"):
            if getattr(cfg.loss, key) < 0:
                raise ValueError(f"loss.{key}={getattr(cfg.loss, key)}: use 0 (off) or a positive extra weight")
        vae_name = Path(cfg.data.vae).name if cfg.data.vae else "vae"
        masks = cfg.loss.face_weight > 0 or cfg.loss.mouth_weight > 0 or cfg.loss.hand_weight > 0
        self.dataset = ClipDataset(cfg.data.root, num_frames=cfg.data.num_frames, split=cfg.data.split,
                                   audio_backend=cfg.data.audio_backend, planner=cfg.data.planner or None,
                                   vae_name=vae_name, face_masks=masks,
                                   known_frames=(cfg.data.tail_frames, cfg.data.head_frames)
                                   if cfg.data.known_frames_prob > 0 else None)
        self.codec = None
        if cfg.data.known_frames_prob > 0 and not cfg.data.vae:
            raise ValueError("data.known_frames_prob > 0 needs data.vae (the VAE folder) to encode known frames")
        missing_known = sum(s.known is None for s in self.dataset.samples) if cfg.data.known_frames_prob > 0 else 0
        if missing_known:
            m, n = cfg.data.tail_frames, cfg.data.head_frames
            log.warning("%d clips lack known.*.m%dn%d.safetensors: each of their frame-interpolation steps VAE-encodes "
                        "the video (on CPU most of such a step); `physavatar extract %s --vae %s --known-frames %d,%d` "
                        "precomputes them", missing_known, m, n, cfg.data.root, cfg.data.vae, m, n)
        if cfg.data.vae:
            from physavatar.models.vae import LatentCodec

            self.codec = LatentCodec.from_pretrained(cfg.data.vae, device=self.accelerator.device)
        model = build_model(cfg)
        self._check_model_fits_data(model)
        self.reference_every_frame = model.config.reference_every_frame  # how `_context` builds the VACE context
        if cfg.run.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                      weight_decay=cfg.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.generator = torch.Generator().manual_seed(cfg.run.seed + 7919 * self.accelerator.process_index)
        self.step = 0
        self.train_seconds = 0.0  # optimizer-step time over the whole run, resumes included
        self.epoch = 0
        self.position = 0  # index into this epoch's order
        self.zero_latents = None
        self.writer = None

    # ------------------------------------------------------------------ setup helpers
    def _check_model_fits_data(self, model) -> None:
        sample = self.dataset[0]
        config = model.config
        self.context_mode = config.context_mode
        if self.cfg.loss.supervision != "none" and model.phys_head is None:
            raise ValueError("loss.supervision needs the physical-state head: set model.phys_layer (e.g. 15) or "
                             "loss.supervision: none (the 'only continuous' ablation)")
        if config.context_mode != "none" and not self.cfg.data.planner:
            raise ValueError(f"model.context_mode={config.context_mode!r} needs plan features: set data.planner, "
                             "or model.context_mode: none (the 'w/o MLLM' ablation)")
        if sample.audio.shape[-1] != config.audio_dim:
            raise ValueError(f"audio features are {sample.audio.shape[-1]}-d ({self.dataset.audio_backend}) but the "
                             f"model expects audio_dim={config.audio_dim}; set model.audio_dim")
        if sample.latents.shape[0] != config.in_channels:
            raise ValueError(f"latents have {sample.latents.shape[0]} channels but the model expects in_channels="
                             f"{config.in_channels}; the VAE and the model config disagree")
        width = {"mllm": config.mllm_dim, "t5": config.text_dim}.get(config.context_mode)
        if sample.e_con is not None and width is not None and sample.e_con.shape[-1] != width:
            key = "mllm_dim" if config.context_mode == "mllm" else "text_dim"
            raise ValueError(f"plan embeddings are {sample.e_con.shape[-1]}-d but the model expects {key}={width}")

    def _order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.cfg.run.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.dataset), generator=g).tolist()
        return order[self.accelerator.process_index :: self.accelerator.num_processes]

    def _next_batch(self) -> dict:
        from physavatar.data.dataset import collate

        items = []
        while len(items) < self.cfg.data.batch_size:
            order = self._order(self.epoch)
            if self.position >= len(order):
                self.epoch, self.position = self.epoch + 1, 0
                continue
            items.append(self.dataset[order[self.position]])
            self.position += 1
        return collate(items)

    # ------------------------------------------------------------------ one step
    def _context(self, batch: dict, draw_known: torch.Tensor) -> torch.Tensor:
        from physavatar.models.vae import control_latents, interpolation_frame_mask, known_frames_context

        # built where the model runs: on a GPU this ~17 MB tensor per batch-16 step costs ~50 ms on the host
        device = self.accelerator.device
        latents, reference = batch["latents"].to(device), batch["reference"].to(device)
        num_frames = self.cfg.data.num_frames
        if self.zero_latents is None:
            shape = (1, latents.shape[1], latents.shape[2], latents.shape[3], latents.shape[4])
            if self.codec is not None:
                h, w = latents.shape[-2] * 8, latents.shape[-1] * 8
                self.zero_latents = self.codec.encode(torch.zeros(1, 3, num_frames, h, w)).to(device)
            else:  # no VAE given: E(zeros) is unknown, use the latent of nothing-known = 0 (tests, tiny runs)
                self.zero_latents = torch.zeros(shape, device=device)
        zeros = self.zero_latents.expand_as(latents)
        mask = torch.ones(latents.shape[0], num_frames)
        context = control_latents(zeros, zeros, mask, reference, self.reference_every_frame)
        if draw_known.any():
            frame_mask = interpolation_frame_mask(num_frames, self.cfg.data.tail_frames, self.cfg.data.head_frames)
            for i in torch.nonzero(draw_known).flatten().tolist():
                known = batch["known"][i]
                if known is None:  # no known.* feature file: encode the clip's known frames now
                    known = self._encode_known(batch["clip_dir"][i], frame_mask)
                context[i : i + 1] = known_frames_context(known[None].to(device), frame_mask, reference[i : i + 1],
                                                          self.zero_latents, self.reference_every_frame)
        return context

    def _encode_known(self, clip_dir: str, frame_mask: torch.Tensor) -> torch.Tensor:
        from physavatar.io.video import read_video
        from physavatar.models.vae import frames_to_tensor, known_frames_latents

        video = frames_to_tensor(read_video(Path(clip_dir) / "video.mp4")[: self.cfg.data.num_frames])
        return known_frames_latents(self.codec, video, frame_mask)[0].cpu()

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, StepLosses]:
        from physavatar.training.flow import add_noise, sample_training_sigmas, velocity_target
        from physavatar.training.masking import discrete_loss, no_audio_mask, phys_targets, training_masks

        cfg, g = self.cfg, self.generator
        device = self.accelerator.device
        # on the device once: `_context` reads them from the batch too
        batch = {**batch, "latents": batch["latents"].to(device), "reference": batch["reference"].to(device)}
        latents, reference = batch["latents"], batch["reference"]
        batch_size, num_latents = latents.shape[0], latents.shape[2]

        # 1. noisy input and velocity target (the reference latent leads, as in VACE); random draws on the CPU
        # generator, so a seed gives the same run on every device
        x0 = torch.cat([reference, latents], dim=2)
        sigmas, timesteps = sample_training_sigmas(batch_size, g, shift=cfg.loss.shift)
        noise = torch.randn(x0.shape, generator=g).to(device)
        x_t = add_noise(x0, noise, sigmas.to(device))
        target = velocity_target(x0, noise)

        # 2. Algorithm 1, then classifier-free-guidance dropout
        mode = "discrete" if cfg.loss.supervision == "none" else cfg.loss.supervision
        audio_mask, supervise = training_masks(mode, sigmas, num_latents, g)
        drop_audio = torch.rand(batch_size, generator=g) < cfg.loss.audio_drop
        if drop_audio.any():
            dropped_mask = no_audio_mask(batch_size, num_latents)
            audio_mask = torch.where(drop_audio[:, None], dropped_mask, audio_mask)
            supervise = torch.where(drop_audio[:, None], torch.ones_like(supervise), supervise)
        drop_context = bool(torch.rand((), generator=g) < cfg.loss.context_drop)
        draw_known = torch.rand(batch_size, generator=g) < cfg.data.known_frames_prob

        # 3. VACE context
        context = self._context(batch, draw_known)

        # 4. forward and the two losses
        e_con = None if drop_context or batch["e_con"] is None else batch["e_con"].to(device)
        e_tok = None if e_con is None else batch["e_tok"].to(device)
        t5 = self.context_mode == "t5"  # "MLLM via T5": the plan's T5 states are Wan's text context
        out = self.model(
            x_t, timesteps.to(device), control_hidden_states=context,
            encoder_hidden_states=e_con if t5 else None,
            audio_features=batch["audio"].to(device), audio_mask=audio_mask.to(device),
            mllm_hidden_states=None if t5 else e_con, mllm_token_embeds=None if t5 else e_tok,
            num_reference_latents=1, return_phys=cfg.loss.supervision != "none",
        )
        pred = out.sample.float()[:, :, 1:]
        err = (pred - target[:, :, 1:]) ** 2
        if batch.get("face") is not None:  # loaded only when loss.face_weight, mouth_weight or hand_weight > 0
            weight = 1.0 + (cfg.loss.face_weight * batch["face"] + cfg.loss.mouth_weight * batch["mouth"]
                            + cfg.loss.hand_weight * batch["hands"])[:, None]
            weight = weight.to(device)  # (B, 1, f, h, w)
            loss_cont = torch.mean(err * weight) / torch.mean(weight)  # same scale as the unweighted mean
        else:
            loss_cont = torch.mean(err)
        loss_disc = torch.zeros((), device=device)
        if cfg.loss.supervision != "none":
            targets = phys_targets(batch["phys"], num_latents).to(device)
            loss_disc = discrete_loss(out.phys_tokens.float(), targets, supervise.to(device))
        loss = loss_cont + cfg.loss.lambda_discrete * loss_disc
        masked = float((audio_mask == 0).float().mean())
        total, cont, disc = torch.stack([loss, loss_cont, loss_disc]).tolist()  # one device sync, not three
        return loss, StepLosses(total, cont, disc, masked)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def save_checkpoint(self) -> Path:
        from safetensors.torch import save_file

        from physavatar.io.atomic import atomic_dir, atomic_write

        final = self.checkpoint_dir() / f"step_{self.step:07d}"
        model = self.accelerator.unwrap_model(self.model)
        with atomic_dir(final, overwrite=True) as tmp:
            save_file(trainable_state_dict(model), tmp / "trainable.safetensors")
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                        "generator": self.generator.get_state()}, tmp / "state.pt")
            with atomic_write(tmp / "trainer_state.json", "w") as f:
                json.dump({"step": self.step, "epoch": self.epoch, "position": self.position,
                           "train_seconds": round(self.train_seconds, 1)}, f)
            save_train_config(self.cfg, tmp / "config.yaml")
            with atomic_write(tmp / "model.json", "w") as f:  # the resolved architecture, checked on resume
                json.dump(self.cfg.model_args().to_model_kwargs(), f, indent=1)
        for old in self.list_checkpoints()[: -self.cfg.run.keep_last]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def list_checkpoints(self) -> list[Path]:
        folder = self.checkpoint_dir()
        if not folder.exists():
            return []
        return sorted(p for p in folder.iterdir() if CHECKPOINT_RE.match(p.name))

    def resume(self, path: str | Path | None = None) -> bool:
        """Load the latest (or the given) checkpoint; False when there is none."""
        from safetensors.torch import load_file

        checkpoints = self.list_checkpoints()
        path = Path(path) if path else (checkpoints[-1] if checkpoints else None)
        if path is None:
            return False
        if (path / "model.json").exists():  # not in checkpoints written before 2026-11-27
            # a switch without weights (e.g. model.audio_hidden_norm) changes the model but no parameter name
            then = {**MODEL_KEYS_ADDED_SINCE, **json.loads((path / "model.json").read_text())}
            now = json.loads(json.dumps(self.cfg.model_args().to_model_kwargs()))  # tuples as lists, as saved
            differ = sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))
            if differ:
                raise ValueError(f"{path}: checkpoint was trained with another model config ("
                                 + ", ".join(f"model.{k}: {then.get(k)!r} there, {now.get(k)!r} here" for k in differ)
                                 + "); resume with the config it was trained with")
        model = self.accelerator.unwrap_model(self.model)
        saved = load_file(path / "trainable.safetensors")
        expected = {n for n, p in model.named_parameters() if p.requires_grad}
        if set(saved) != expected:
            raise ValueError(f"{path}: checkpoint does not match this model/config "
                             f"({len(set(saved) ^ expected)} parameter names differ); resume with the same config")
        model.load_state_dict(saved, strict=False)
        state = torch.load(path / "state.pt", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        progress = json.loads((path / "trainer_state.json").read_text())
        self.step, self.epoch, self.position = progress["step"], progress["epoch"], progress["position"]
        if self.accelerator.process_index == 0:
            self.generator.set_state(state["generator"])  # one process: the resumed run continues bit for bit
        else:  # the checkpoint holds rank 0's stream; other ranks must not repeat its noise draws
            rank = self.accelerator.process_index
            self.generator.manual_seed(self.cfg.run.seed + 7919 * rank + 1_000_003 * self.step)
        self.train_seconds = float(progress.get("train_seconds", 0.0))
        log.info("resumed from %s at step %d", path, self.step)
        return True

    # ------------------------------------------------------------------ the loop
    def train_step(self) -> StepLosses:
        """One optimizer step (over `optim.grad_accum` batches)."""
        cfg = self.cfg
        for _ in range(cfg.optim.grad_accum):
            with self.accelerator.accumulate(self.model):
                loss, losses = self.compute_loss(self._next_batch())
                if not math.isfinite(losses.total):
                    raise FloatingPointError(f"step {self.step}: loss is {losses.total}; lower optim.lr or check "
                                             "the data (features with NaN?)")
                self.accelerator.backward(loss)
                if self.accelerator.sync_gradients and cfg.optim.grad_clip > 0:
                    self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        return losses

    def train(self) -> list[StepLosses]:
        from tqdm import tqdm

        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_train_config(cfg, self.out_dir / "config.yaml")
        if cfg.run.tensorboard and self.accelerator.is_main_process:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed: metrics go to the progress bar and history only")
        history: list[StepLosses] = []
        window: list[StepLosses] = []  # steps since the last metrics.jsonl line
        self.model.train()
        bar = tqdm(total=cfg.run.max_steps, initial=self.step, unit="step", disable=not self.progress,
                   desc=f"train {self.out_dir.name}")
        while self.step < cfg.run.max_steps:
            start = time.perf_counter()
            losses = self.train_step()
            history.append(losses)
            seconds = time.perf_counter() - start
            self.train_seconds += seconds
            window.append(losses)
            bar.update(1)
            bar.set_postfix(loss=f"{losses.total:.4f}", cont=f"{losses.cont:.4f}", disc=f"{losses.disc:.4f}",
                            s_per_step=f"{seconds:.2f}")
            if self.writer is not None and self.step % cfg.run.log_every == 0:
                for key, value in vars(losses).items():
                    self.writer.add_scalar(f"train/{key}", value, self.step)
                self.writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                self.writer.add_scalar("train/seconds_per_step", seconds, self.step)
            if self.accelerator.is_main_process and self.step % cfg.run.log_every == 0:
                self._log_metrics(window)
                window = []
            if self.accelerator.is_main_process and (
                self.step % cfg.run.save_every == 0 or self.step == cfg.run.max_steps
            ):
                self.save_checkpoint()
            if cfg.run.val_every and self.step % cfg.run.val_every == 0 and self.accelerator.is_main_process:
                self.validate()
        bar.close()
        if self.writer is not None:
            self.writer.close()
        return history

    def _log_metrics(self, window: list[StepLosses]) -> None:
        """One line of RUN/metrics.jsonl: mean losses since the last line (kept across resumes)."""
        if not window:
            return
        row = {"step": self.step, "train_seconds": round(self.train_seconds, 1),
               "lr": self.scheduler.get_last_lr()[0],
               **{k: round(float(np.mean([vars(w)[k] for w in window])), 5) for k in vars(window[0])}}
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def validate(self) -> Path | None:
        """Generate a short sample for a held-out clip (its reference image and audio) with the current weights."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        from physavatar.data.manifest import read_manifest
        from physavatar.inference.pipeline import PhysAvatarPipeline

        if self.codec is None:
            log.warning("run.val_every needs data.vae: no sample")
            return None
        rows = [r for r in read_manifest(self.cfg.data.root) if r.get("split") == self.cfg.run.val_split]
        if not rows:
            log.warning("no %r clip in %s: no validation sample", self.cfg.run.val_split, self.cfg.data.root)
            return None
        clip = Path(self.cfg.data.root) / rows[0]["path"]
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        try:
            pipe = PhysAvatarPipeline(model, self.codec.vae, FlowMatchEulerDiscreteScheduler(shift=self.cfg.loss.shift),
                                      size=int(self.dataset[0].latents.shape[-1] * 8),
                                      chunk_frames=self.cfg.data.num_frames, audio_backend=self.cfg.data.audio_backend,
                                      planner=self.cfg.data.planner)
            out = self.out_dir / "samples" / f"step_{self.step:07d}.mp4"
            pipe.generate(clip / "reference.png", clip / "audio.wav", out, num_steps=self.cfg.run.val_steps,
                          shift=self.cfg.loss.shift,
                          work_dir=self.out_dir / "samples" / ".work" / f"{self.step}", progress=False)
            shutil.rmtree(self.out_dir / "samples" / ".work", ignore_errors=True)
        finally:
            model.train()
        return out

    def export(self, out_dir: str | Path | None = None) -> Path:
        """The trained transformer (LoRA merged) as a diffusers folder; with a VAE, a whole pipeline folder
        (transformer/ + vae/ + scheduler/) that `physavatar generate --model` loads."""
        from physavatar.io.atomic import atomic_dir, atomic_write
        from physavatar.models.checkpoint import export_merged

        model = self.accelerator.unwrap_model(self.model)
        if self.codec is None:
            return export_merged(model, Path(out_dir) if out_dir else self.out_dir / "transformer", overwrite=True)
        from diffusers import FlowMatchEulerDiscreteScheduler

        from physavatar.inference.pipeline import PhysAvatarPipeline

        out = Path(out_dir) if out_dir else self.out_dir / "pipeline"
        with atomic_dir(out, overwrite=True) as tmp:
            export_merged(model, tmp / "transformer", dtype=getattr(torch, self.cfg.run.export_dtype))
            pipe = PhysAvatarPipeline(model, self.codec.vae, FlowMatchEulerDiscreteScheduler(shift=self.cfg.loss.shift),
                                      size=int(self.dataset[0].latents.shape[-1] * 8),
                                      chunk_frames=self.cfg.data.num_frames, audio_backend=self.cfg.data.audio_backend,
                                      planner=self.cfg.data.planner, num_steps=self.cfg.run.export_steps,
                                      audio_scale=self.cfg.run.export_audio_scale)
            pipe.vae.save_pretrained(tmp / "vae")
            pipe.scheduler.save_pretrained(tmp / "scheduler")
            pipe.save_config(tmp)  # model_index.json with size, chunk_frames, encoders
            with atomic_write(tmp / "training_card.json", "w") as f:
                json.dump(self.training_card(), f, indent=1)
        return out

    def training_card(self) -> dict:
        """How this model was made: config, data, VAE, steps, wall time, losses (from RUN/metrics.jsonl)."""
        from physavatar.data.manifest import read_manifest

        by_step: dict[int, dict] = {}  # steps logged again after a resume: the later line wins
        metrics = self.out_dir / "metrics.jsonl"
        if metrics.exists():
            for line in metrics.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash
                    continue
                by_step[row["step"]] = row
        rows = [by_step[k] for k in sorted(by_step) if k <= self.step]
        last = rows[-10:]
        splits: dict[str, int] = {}
        for r in read_manifest(self.cfg.data.root):
            splits[r.get("split", "train")] = splits.get(r.get("split", "train"), 0) + 1
        vae_card = Path(self.cfg.data.vae) / "training_card.json" if self.cfg.data.vae else None
        every = max(1, len(rows) // 100)
        return {
            "config": self.cfg.to_dict(),
            "data": {"root": self.cfg.data.root, "clips_by_split": splits, "train_clips_used": len(self.dataset),
                     "world": self._world_settings()},
            "vae": json.loads(vae_card.read_text()) if vae_card and vae_card.exists() else None,
            "init": self._init_card(),
            "steps": self.step,
            "processes": self.accelerator.num_processes,
            "global_batch": self.cfg.data.batch_size * self.cfg.optim.grad_accum * self.accelerator.num_processes,
            "wall_time_s": round(self.train_seconds, 1),
            "final_losses": {k: round(float(np.mean([r[k] for r in last])), 5) for k in ("total", "cont", "disc")}
            if last else None,
            "loss_curve": [{k: r[k] for k in ("step", "total", "cont", "disc")} for r in rows[::every]],
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(self.accelerator.device) if self.accelerator.device.type == "cuda"
            else str(self.accelerator.device),
        }

    def _init_card(self) -> dict | None:
        """Where a fine-tune's weights started (run.init_from) and, for an exported pipeline's transformer, that
        pipeline's own card: the whole chain of runs behind a model stays in its card."""
        if not self.cfg.run.init_from:
            return None
        card = Path(self.cfg.run.init_from).parent / "training_card.json"
        return {"from": self.cfg.run.init_from, "fresh_audio_proj": self.cfg.run.init_fresh_audio_proj,
                "card": json.loads(card.read_text()) if card.exists() else None}

    def _world_settings(self) -> dict | None:
        """How the synthetic world was rendered for this model (`physavatar demo` draws its people the same way);
        None for real data."""
        meta_path = Path(self.dataset.samples[0].clip_dir) / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if meta.get("source") != "world":
            return None
        return {"framing": meta.get("framing", "mixed"), "size": meta["size"][0],
                "world_version": meta.get("world_version")}


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then constant (the paper's fine-tuning) or a cosine down to a tenth at run.max_steps."""
    if cfg.optim.decay not in ("constant", "cosine"):
        raise ValueError(f"optim.decay={cfg.optim.decay!r}; choose constant or cosine")
    warmup = max(1, cfg.optim.warmup_steps)
    if step < warmup:
        return (step + 1) / warmup
    if cfg.optim.decay == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, cfg.run.max_steps - warmup))
    return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))
