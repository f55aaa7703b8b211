"""Training a small Wan VAE (`AutoencoderKLWan`) on a clip dataset, e.g. the synthetic world.

The pretrained Wan VAE cannot be downloaded here, and the demo model needs a latent space for world frames.
Samples are random 1 + 4k-frame windows of the clips' videos; the loss is L1 + MSE reconstruction of the
posterior mean (the latents the diffusion model is trained on are `mode()` latents, see models/vae.py) plus a
small pull of the means towards zero that keeps the latent scale bounded. `face_weight` multiplies the loss
inside each frame's face box (from the clip's keypoints.npy) by 1 + face_weight: the face and the lips are a
small part of the frame and the part a talking-head viewer looks at.

`freeze_encoder` (with `init`) fine-tunes the decoder alone: the encoder, hence the latent space and its
normalisation, stay exactly as they were, so a diffusion model trained on the old latents works with the new
decoder unchanged. Windows are encoded whole and cropped in latent space, so the decoder learns on the very
latents a full-frame encode (and the diffusion model) gives. Sampling the posterior instead made
a from-scratch VAE converge several times slower on CPU, for no gain here. `decoder_base_dim` (diffusers'
`AutoencoderKLWan` config key) gives the init's encoder a fresh decoder of that width; with `freeze_encoder` it
learns the init's very latent space. `adv_weight` adds a patch discriminator's hinge loss from step `adv_start`
on (training/discriminator.py), balanced against the reconstruction loss at the decoder's last layer as in
VQGAN: L1 + MSE alone draws the mean of what a latent could be, a blur where the face is small. `patch_size`
and `residual` build a from-scratch VAE in Wan2.2's layout (pixel unshuffle by 2, one level fewer, residual
down / up blocks; for the demo's world it learns far more in the same CPU time, docs/demo.md). The learning
rate warms up, then follows a cosine. Every `save_every` steps the state (weights, optimizers, discriminator,
data RNG) is saved to OUT.ckpt/, and a rerun with the same arguments resumes from it. At the end the per-channel
latent mean / std over the data are written into the VAE config (`latents_mean`, `latents_std`), which is how
Wan normalises latents, and the folder is written atomically.

    physavatar train-vae --data data/world --out vae_world --steps 2000
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from physavatar.constants import VAE_SPATIAL_STRIDE
from physavatar.training.discriminator import (PatchDiscriminator, adaptive_weight, discriminator_loss,
                                               generator_loss)


@dataclass
class VaeTrainArgs:
    data: str = "data/world"
    out: str = "vae_world"
    base_dim: int = 8
    decoder_base_dim: int | None = None  # decoder width when it differs from base_dim (None: the same, or the init's)
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 1
    patch_size: int | None = None  # Wan2.2's pixel (un)shuffle around the VAE: 2 runs the top level at half resolution
    residual: bool = False  # Wan2.2's residual down/up blocks (diffusers' is_residual)
    window: int = 5  # frames per sample (1 + 4k)
    crop: int = 64  # train on random crop x crop windows (0: whole frames); the VAE is convolutional, so a
    # 64-px crop costs a quarter of a 128-px frame and buys four times the steps
    batch_size: int = 4
    lr: float = 3e-3
    warmup_steps: int = 50
    steps: int = 2000
    mean_weight: float = 1e-4  # pull of the posterior means towards 0 (keeps the latent scale bounded)
    max_clips: int = 400  # clips decoded into memory for training
    save_every: int = 100  # steps between resumable checkpoints in OUT.ckpt/
    seed: int = 0
    init: str = ""  # start from this AutoencoderKLWan folder (fine-tuning, e.g. on longer windows) instead of scratch
    freeze_encoder: bool = False  # train the decoder only (needs init); the latent space stays the init's
    face_weight: float = 0.0  # extra loss weight inside the face box (needs keypoints.npy beside each video)
    adv_weight: float = 0.0  # weight of the patch discriminator's hinge loss, relative to the adaptive balance (0: off)
    adv_start: int = 0  # step the discriminator and its loss start at (after an L1 + MSE warm-up when from scratch)
    disc_lr: float = 2e-4  # discriminator learning rate (Adam, betas 0.5 / 0.9, constant)
    device: str = "auto"  # auto = CUDA when there is one; not part of a run's identity (a run may resume elsewhere)


def _load_frames(root: Path, max_clips: int, split: str, face_weight: float = 0.0) -> list[np.ndarray]:
    """Videos (F, H, W, 3) uint8; with face_weight, each gets a 4th channel: 1 inside the face box, else 0."""
    from physavatar.data.manifest import read_manifest
    from physavatar.io.video import read_video

    rows = [r for r in read_manifest(root, required=True) if r.get("split", "train") == split][:max_clips]
    videos = []
    for row in rows:
        video = read_video(root / row["path"] / "video.mp4")
        if face_weight:
            weight = _face_weights(root / row["path"] / "keypoints.npy", video.shape[:3])
            video = np.concatenate([video, weight[..., None]], axis=-1)
        videos.append(video)
    return videos


def _face_weights(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """(F, H, W) uint8: 1 inside each frame's face box, 0 outside (the loss weight is 1 + face_weight * it)."""
    from physavatar.physstate.layout import face_mask

    if not path.exists():
        raise ValueError(f"{path}: missing; --face-weight needs each clip's keypoints.npy (F, 127, 3), "
                         "as `physavatar world make` or `physavatar extract --pose ...` write")
    kp = np.load(path)
    f, h, w = shape
    if kp.ndim != 3 or kp.shape[0] != f:
        raise ValueError(f"{path}: keypoints {kp.shape} do not match the video's {f} frames")
    return face_mask(kp, (h, w))


def _batch(videos: list[np.ndarray], window: int, size: int, generator: np.random.Generator,
           crop: int = 0, face_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, 3, window, H, W) in [-1, 1] and, when the videos carry a weight channel, the loss weights
    (B, 1, window, H, W)."""
    from physavatar.models.vae import frames_to_tensor

    picks = []
    for _ in range(size):
        video = videos[generator.integers(len(videos))]
        start = generator.integers(0, len(video) - window + 1)
        clip = video[start : start + window]
        if crop:
            y, x = generator.integers(0, clip.shape[1] - crop + 1), generator.integers(0, clip.shape[2] - crop + 1)
            clip = clip[:, y : y + crop, x : x + crop]
        picks.append(clip)
    picks = np.stack(picks)
    x = frames_to_tensor(picks[..., :3])
    if picks.shape[-1] == 3:
        return x, None
    weight = 1.0 + face_weight * torch.from_numpy(picks[..., 3]).float()
    return x, weight[:, None]


def _crop_latents(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor | None, crop: int,
                  generator: np.random.Generator):
    """The same random crop of pixels (B, 3, F, H, W), latents (B, z, f, H/8, W/8) and weights."""
    if not crop:
        return x, z, weight
    h, w = z.shape[-2:]
    c = crop // 8
    y, xx = int(generator.integers(0, h - c + 1)), int(generator.integers(0, w - c + 1))
    pix = (slice(None),) * 3 + (slice(8 * y, 8 * (y + c)), slice(8 * xx, 8 * (xx + c)))
    lat = (slice(None),) * 3 + (slice(y, y + c), slice(xx, xx + c))
    return x[pix], z[lat], None if weight is None else weight[pix]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two [-1, 1] videos."""
    mse = torch.mean(((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def train_vae(args: VaeTrainArgs, progress: bool = True) -> dict:
    from diffusers import AutoencoderKLWan
    from tqdm import tqdm

    from physavatar.constants import num_latent_frames
    from physavatar.device import resolve_device
    from physavatar.io.atomic import atomic_dir

    num_latent_frames(args.window)  # 1 + 4k
    root = Path(args.data)
    if args.freeze_encoder and not args.init:
        raise ValueError("--freeze-encoder fine-tunes a trained VAE's decoder; give the VAE with --init")
    if args.face_weight < 0:
        raise ValueError(f"--face-weight {args.face_weight}: use 0 (off) or a positive extra weight")
    if args.adv_weight < 0 or not 0 <= args.adv_start < max(args.steps, 1):
        raise ValueError(f"--adv-weight {args.adv_weight} / --adv-start {args.adv_start}: use a weight >= 0 (0: off) "
                         f"and a start step in [0, --steps {args.steps})")
    architecture = None if args.init else _architecture(args)  # bad levels fail before minutes of video decoding
    videos = _load_frames(root, args.max_clips, "train", args.face_weight)
    held_out = [v[..., :3] for v in _load_frames(root, 8, "val")] or [v[..., :3] for v in videos[-2:]]
    if not videos:
        raise ValueError(f"{root}: no train clips to learn from")
    if args.crop and (args.crop % 8 or args.crop > min(v.shape[1] for v in videos)):
        raise ValueError(f"--crop {args.crop}: use a multiple of 8 no larger than the frames (0: whole frames)")
    if min(len(v) for v in videos) < args.window:
        raise ValueError(f"clips are shorter than --window {args.window} frames")
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.init:
        vae = AutoencoderKLWan.from_pretrained(args.init, torch_dtype=torch.float32)
        if args.decoder_base_dim and args.decoder_base_dim != _decoder_width(vae.config):
            vae = _with_fresh_decoder(vae, args.decoder_base_dim)
    else:
        vae = AutoencoderKLWan(**architecture, latents_mean=[0.0] * args.z_dim, latents_std=[1.0] * args.z_dim)
    vae.to(device)
    if args.freeze_encoder:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    trained = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, args))
    disc = disc_optimizer = None
    if args.adv_weight:
        disc = PatchDiscriminator().to(device)
        disc_optimizer = torch.optim.Adam(disc.parameters(), lr=args.disc_lr, betas=(0.5, 0.9))
    ckpt = Path(f"{args.out}.ckpt")
    step, losses, adv_losses, seconds = 0, [], [], 0.0
    if (ckpt / "state.pt").exists():
        try:
            state = torch.load(ckpt / "state.pt", weights_only=True, map_location="cpu")
        except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing here
            raise ValueError(f"{ckpt / 'state.pt'} is unreadable ({type(err).__name__}); delete {ckpt} to start "
                             "over") from None
        if _identity(state["args"]) != _identity(asdict(args)):
            raise ValueError(f"{ckpt} holds a run with other arguments; delete it or use another --out")
        vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if disc is not None:
            disc.load_state_dict(state["disc"])
            disc_optimizer.load_state_dict(state["disc_optimizer"])
        step, losses, adv_losses, seconds = state["step"], state["losses"], state["adv_losses"], state["seconds"]
    start = time.perf_counter() - seconds
    bar = tqdm(range(step, args.steps), unit="step", disable=not progress, desc="train vae", initial=step,
               total=args.steps)
    for step in bar:
        if args.freeze_encoder:
            x, weight = _to(device, *_batch(videos, args.window, args.batch_size, rng, 0, args.face_weight))
            with torch.no_grad():
                z = vae.encode(x).latent_dist.mode()
            x, z, weight = _crop_latents(x, z, weight, args.crop, rng)
            recon, loss = vae.decode(z).sample, 0.0
        else:
            x, weight = _to(device, *_batch(videos, args.window, args.batch_size, rng, args.crop, args.face_weight))
            posterior = vae.encode(x).latent_dist
            recon = vae.decode(posterior.mode()).sample
            loss = args.mean_weight * (posterior.mean ** 2).mean()
        err = recon - x
        if weight is not None:
            err = err * weight / weight.mean()  # same overall scale as the unweighted loss
        rec = err.abs().mean() + (err ** 2).mean()
        loss = loss + rec
        adversarial = disc is not None and step >= args.adv_start
        if adversarial:
            disc.requires_grad_(False)
            fooled = generator_loss(disc(recon))
            loss = loss + args.adv_weight * adaptive_weight(rec, fooled, vae.decoder.conv_out.weight) * fooled
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if adversarial:
            disc.requires_grad_(True)
            d_loss = discriminator_loss(disc(x), disc(recon.detach()))
            d_loss.backward()
            disc_optimizer.step()
            disc_optimizer.zero_grad(set_to_none=True)
            adv_losses.append(d_loss.item())
        losses.append(rec.item())
        bar.set_postfix(rec=f"{np.mean(losses[-20:]):.4f}",
                        **({"disc": f"{np.mean(adv_losses[-20:]):.3f}"} if adv_losses else {}))
        if (step + 1) % args.save_every == 0 and step + 1 < args.steps:
            _save_state(ckpt, {"args": asdict(args), "vae": vae.state_dict(), "optimizer": optimizer.state_dict(),
                               "schedule": schedule.state_dict(), "rng": rng.bit_generator.state,
                               "torch_rng": torch.get_rng_state(), "step": step + 1, "losses": losses,
                               "adv_losses": adv_losses, "seconds": time.perf_counter() - start,
                               **({"disc": disc.state_dict(), "disc_optimizer": disc_optimizer.state_dict()}
                                  if disc is not None else {})})

    # latent statistics for Wan's normalisation, and a held-out reconstruction figure
    vae.eval()
    with torch.no_grad():
        test = _batch(held_out, args.window, 8, np.random.default_rng(args.seed + 1))[0].to(device)
        held_psnr = psnr(vae.decode(vae.encode(test).latent_dist.mode()).sample, test)
        if not args.freeze_encoder:  # a frozen encoder keeps its latent space, normalisation included
            sample = _batch(videos, args.window, min(32, 8 * args.batch_size), rng)[0].to(device)
            z = vae.encode(sample).latent_dist.mode()
            vae.register_to_config(latents_mean=z.mean(dim=(0, 2, 3, 4)).tolist(),
                                   latents_std=z.std(dim=(0, 2, 3, 4)).clamp_min(1e-4).tolist())
    # with --init the layout flags are ignored (the init's layout is kept), so `args` alone would misreport it
    layout = {key: vae.config[key] for key in ("base_dim", "decoder_base_dim", "z_dim", "dim_mult", "num_res_blocks",
                                                "patch_size", "is_residual", "temperal_downsample")}
    card = {"args": asdict(args), "layout": layout, "init_card": _card(args.init),
            "train_seconds": round(time.perf_counter() - start, 1),
            "final_reconstruction_loss": float(np.mean(losses[-20:])) if losses else None,
            "loss_curve": [round(float(np.mean(losses[i:i + 50])), 4) for i in range(0, len(losses), 50)],
            "discriminator_loss_curve": [round(float(np.mean(adv_losses[i:i + 50])), 4)
                                         for i in range(0, len(adv_losses), 50)],
            "held_out_psnr_db": round(held_psnr, 2), "parameters": sum(p.numel() for p in vae.parameters()),
            "device": str(device)}
    with atomic_dir(args.out, overwrite=True) as tmp:
        vae.to("cpu").save_pretrained(tmp)
        (tmp / "training_card.json").write_text(json.dumps(card, indent=1))
    import shutil

    shutil.rmtree(ckpt, ignore_errors=True)
    return card


def _architecture(args: VaeTrainArgs) -> dict:
    """diffusers' AutoencoderKLWan config for a VAE from scratch. The spatial stride must stay Wan's 8 (the model
    and the pipeline assume it): 2 ** (levels - 1) downsamplings times the patch size. Time is downsampled by 4
    in the last two downsamplings, as in Wan2.1 (and Wan2.2's VAE with a patch size of 2 and one level fewer)."""
    patch = args.patch_size or 1
    stride = patch * 2 ** (len(args.dim_mult) - 1)
    levels = ",".join(map(str, args.dim_mult))
    if stride != VAE_SPATIAL_STRIDE or len(args.dim_mult) < 3:
        raise ValueError(f"--dim-mult {levels} with --patch-size {patch} downsamples {stride}x in space; the model "
                         f"needs {VAE_SPATIAL_STRIDE}x (4 levels, or 3 with --patch-size 2)")
    mult = list(args.dim_mult)
    if args.residual and (mult != sorted(mult) or mult[-1] != mult[-2]):
        raise ValueError(f"--residual --dim-mult {levels}: the residual blocks need non-decreasing levels whose last "
                         "two are equal (e.g. 1,2,2)")
    temporal = [False] * (len(args.dim_mult) - 3) + [True, True]
    return dict(base_dim=args.base_dim, decoder_base_dim=args.decoder_base_dim, z_dim=args.z_dim,
                dim_mult=mult, num_res_blocks=args.num_res_blocks, temperal_downsample=temporal,
                patch_size=args.patch_size, is_residual=args.residual, in_channels=3 * patch ** 2,
                out_channels=3 * patch ** 2)


def _decoder_width(config) -> int:
    return config.decoder_base_dim or config.base_dim


def _with_fresh_decoder(vae, decoder_base_dim: int):
    """The same encoder (so the same latent space and normalisation) with a new, untrained decoder of another
    width: whether a wider decoder draws more of what the latents hold (for the demo VAE, 8 channels wide at full
    resolution, only a little: docs/demo.md)."""
    from diffusers import AutoencoderKLWan

    config = {k: v for k, v in vae.config.items() if not k.startswith("_")}
    fresh = AutoencoderKLWan.from_config({**config, "decoder_base_dim": decoder_base_dim})
    fresh.encoder.load_state_dict(vae.encoder.state_dict())
    fresh.quant_conv.load_state_dict(vae.quant_conv.state_dict())
    fresh.post_quant_conv.load_state_dict(vae.post_quant_conv.state_dict())
    return fresh


def _to(device: torch.device, x: torch.Tensor, weight: torch.Tensor | None):
    return x.to(device), None if weight is None else weight.to(device)


def _identity(args: dict) -> dict:
    """The arguments that make two runs the same run (the device does not)."""
    return {k: v for k, v in args.items() if k != "device"}


def _card(folder: str) -> dict | None:
    path = Path(folder) / "training_card.json" if folder else None
    return json.loads(path.read_text()) if path and path.exists() else None


def _lr_factor(step: int, args: VaeTrainArgs) -> float:
    if step < args.warmup_steps:
        return (step + 1) / args.warmup_steps
    progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _save_state(ckpt: Path, state: dict) -> None:
    from physavatar.io.atomic import atomic_write

    ckpt.mkdir(parents=True, exist_ok=True)
    with atomic_write(ckpt / "state.pt", "wb") as f:
        torch.save(state, f)
