"""`physavatar train --config CONFIG.yaml [--section.key=value ...]` (also `accelerate launch -m physavatar.train`
on GPUs, `torchrun --nproc_per_node N -m physavatar.train` on CPUs)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train PhysAvatar (L = L_cont + lambda L_disc, Algorithm 1). The YAML file holds overrides of the defaults "
        "in physavatar.training.config; any key can also be overridden on the command line, e.g. "
        "--optim.lr=1e-4 --run.max_steps=100 --model.phys_layer=10."
    )
    parser.add_argument("--config", help="YAML file of overrides (configs/demo.yaml, configs/ablations/*.yaml)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None,
                        help="continue from the latest checkpoint in run.out_dir (or from the given checkpoint folder)")
    parser.add_argument("--export", help="after training, write the merged transformer as a diffusers folder here "
                                         "(default: RUN_DIR/transformer)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    # Any other --section.key=value is a config override (collected by physavatar.cli).
    parser.set_defaults(overrides=[])


def run(args: argparse.Namespace) -> int:
    from physavatar.training.config import load_train_config
    from physavatar.training.trainer import Trainer

    cfg = load_train_config(args.config, args.overrides)
    trainer = Trainer(cfg, progress=not args.no_progress)
    if args.resume:
        found = trainer.resume(None if args.resume == "latest" else args.resume)
        print(f"resumed at step {trainer.step}" if found else "no checkpoint found: starting from step 0")
    history = trainer.train()
    if history:
        last = history[-1]
        processes = trainer.accelerator.num_processes
        print(f"step {trainer.step}: loss {last.total:.4f} (cont {last.cont:.4f}, disc {last.disc:.4f}) "
              f"on {processes} process{'es' if processes > 1 else ''}")
    if trainer.accelerator.is_main_process:
        out = trainer.export(args.export)
        print(f"model written to {out}")
    return 0
