"""The Wan VAE on the CPU, as diffusers runs it against LatentCodec's faster kernels (models/vae.speed_up_on_cpu):
`OMP_NUM_THREADS=2 python benchmarks/bench_vae.py [--model PIPELINE_OR_VAE_FOLDER] [--frames 33] [--repeats 3]`.

Decodes one chunk of latents and encodes one clip of frames with the shipped demo VAE (default), once through
an untouched AutoencoderKLWan and once through LatentCodec's, and prints the best-of-N seconds of each, their
ratio and the largest difference between the two outputs (the same model: it should be float rounding).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import best_of  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    from diffusers import AutoencoderKLWan

    from physavatar.commands.generate import default_model_dir
    from physavatar.constants import VAE_SPATIAL_STRIDE
    from physavatar.models.vae import LatentCodec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a pipeline folder (its vae/) or a VAE folder; default: the "
                                                  "shipped demo model")
    ap.add_argument("--frames", type=int, default=33, help="frames per chunk (4k + 1)")
    ap.add_argument("--size", type=int, default=128, help="frame side in pixels")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    folder = Path(args.model) if args.model else default_model_dir()
    if (folder / "vae").is_dir():
        folder = folder / "vae"
    plain = AutoencoderKLWan.from_pretrained(folder).eval()
    routed = LatentCodec.from_pretrained(folder).vae
    torch.manual_seed(0)
    latent = args.size // VAE_SPATIAL_STRIDE
    z = torch.randn(1, plain.config.z_dim, (args.frames - 1) // 4 + 1, latent, latent)
    x = torch.rand(1, 3, args.frames, args.size, args.size) * 2 - 1
    print(f"{folder}: {args.frames} frames at {args.size} px, {torch.get_num_threads()} threads, "
          f"best of {args.repeats}")
    with torch.no_grad():
        for name, run in (("decode", lambda vae: vae.decode(z).sample),
                          ("encode", lambda vae: vae.encode(x).latent_dist.mode())):
            diff = float((run(plain) - run(routed)).abs().max())
            t_plain = best_of(lambda: run(plain), args.repeats)
            t_routed = best_of(lambda: run(routed), args.repeats)
            print(f"{name}: plain {t_plain:6.2f} s, LatentCodec's {t_routed:6.2f} s, "
                  f"{t_plain / t_routed:4.1f}x; largest output difference {diff:.1e}")


if __name__ == "__main__":
    main()
