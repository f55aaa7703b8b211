"""`physavatar train-vae --data DIR --out DIR`: a small Wan VAE for a clip dataset (e.g. the synthetic world)."""

from __future__ import annotations

import argparse

from physavatar.training.vae import VaeTrainArgs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = VaeTrainArgs()
    parser.add_argument("--data", required=True, help="clip dataset folder (manifest.jsonl + clips/*/video.mp4)")
    parser.add_argument("--out", required=True, help="output AutoencoderKLWan folder (written atomically)")
    parser.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per step")
    parser.add_argument("--window", type=int, default=d.window, help="frames per window, 1 + 4k (default 5)")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"peak AdamW learning rate (default {d.lr}; linear "
                        "warmup, then a cosine down to a tenth)")
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="learning-rate warmup steps")
    parser.add_argument("--save-every", type=int, default=d.save_every, help="steps between resumable checkpoints "
                        "(OUT.ckpt/; a rerun with the same arguments resumes)")
    parser.add_argument("--crop", type=int, default=d.crop, help=f"train on random square crops of this many "
                        f"pixels (multiple of 8; 0: whole frames; default {d.crop})")
    parser.add_argument("--base-dim", type=int, default=d.base_dim, help="VAE width (Wan2.1: 96; demo: 8)")
    parser.add_argument("--decoder-base-dim", type=int, default=None, help="decoder width when it should differ "
                        "from --base-dim; with --init, a fresh decoder of this width replaces the init's (add "
                        "--freeze-encoder to train it on the init's latent space unchanged; default: the same width "
                        "as the encoder, or the init's)")
    parser.add_argument("--dim-mult", default=",".join(map(str, d.dim_mult)), help="width multiplier of each "
                        "level, comma-separated (default 1,2,2,4; each level after the first halves the resolution)")
    parser.add_argument("--patch-size", type=int, default=None, help="Wan2.2's pixel unshuffle before the encoder "
                        "(and shuffle after the decoder): 2 runs the full-resolution level at half resolution, "
                        "so use one level fewer (e.g. --dim-mult 1,2,2); default: none, as in Wan2.1")
    parser.add_argument("--residual", action="store_true", help="Wan2.2's residual down/up-sampling blocks "
                        "(diffusers' is_residual)")
    parser.add_argument("--z-dim", type=int, default=d.z_dim, help="latent channels (16 = Wan's; the model's "
                        "in_channels must match)")
    parser.add_argument("--max-clips", type=int, default=d.max_clips, help="train clips decoded into memory")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed")
    parser.add_argument("--init", default="", help="start from this AutoencoderKLWan folder instead of from "
                        "scratch (fine-tuning; --base-dim, --z-dim, --dim-mult, --patch-size and --residual are "
                        "then the folder's)")
    parser.add_argument("--freeze-encoder", action="store_true", help="fine-tune the decoder of the --init VAE "
                        "only: its latent space (and latents_mean/std) stay exactly the same, so a model trained on "
                        "its latents keeps working with the new decoder")
    parser.add_argument("--face-weight", type=float, default=d.face_weight, help="extra loss weight inside each "
                        "frame's face box, from the clips' keypoints.npy (default 0: off; e.g. 4 = five times the "
                        "weight of the rest of the frame)")
    parser.add_argument("--adv-weight", type=float, default=d.adv_weight, help="add a patch discriminator's hinge "
                        "loss with this weight, balanced against the reconstruction loss's gradient at the decoder's "
                        "last layer (VQGAN's adaptive weight; e.g. 0.5; default 0: off). L1 + MSE alone blurs what the "
                        "latents leave uncertain, such as a small face")
    parser.add_argument("--adv-start", type=int, default=d.adv_start, help="step the discriminator and its loss "
                        "start at (default 0; from scratch, start after the reconstruction has converged)")
    parser.add_argument("--disc-lr", type=float, default=d.disc_lr, help=f"discriminator learning rate (Adam, "
                        f"constant; default {d.disc_lr})")
    parser.add_argument("--device", default=d.device, help="auto (CUDA when there is one, default), cpu, cuda, "
                        "cuda:1, ...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json

    from physavatar.training.vae import train_vae

    card = train_vae(VaeTrainArgs(data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size,
                                  window=args.window, lr=args.lr, base_dim=args.base_dim,
                                  decoder_base_dim=args.decoder_base_dim, z_dim=args.z_dim,
                                  dim_mult=_levels(args.dim_mult), patch_size=args.patch_size,
                                  residual=args.residual,
                                  max_clips=args.max_clips, seed=args.seed, warmup_steps=args.warmup_steps,
                                  save_every=args.save_every, crop=args.crop,
                                  init=args.init, freeze_encoder=args.freeze_encoder,
                                  face_weight=args.face_weight, adv_weight=args.adv_weight,
                                  adv_start=args.adv_start, disc_lr=args.disc_lr, device=args.device),
                     progress=not args.quiet)
    print(json.dumps({k: v for k, v in card.items() if k != "args"}))
    return 0


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(m) for m in text.split(","))
    except ValueError:
        raise ValueError(f"--dim-mult {text!r}: give comma-separated integers, e.g. 1,2,2,4") from None
    if not levels or min(levels) < 1:
        raise ValueError(f"--dim-mult {text!r}: give positive integers, e.g. 1,2,2,4")
    return levels
