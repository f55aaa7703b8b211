"""`physavatar <command>`: one entry point; each command lives in its own module.

A command module defines `add_arguments(parser)` and `run(args) -> int`. Modules are imported only when
their command runs (or its --help is asked for), so the top-level `--help` needs no torch import.
Tests call `main([...])` in-process.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Add a command here and nowhere else.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("physavatar.commands.info", "build a model preset and print its parameter summary"),
    "world": ("physavatar.commands.world", "the synthetic avatar world: make datasets, render identities"),
    "plan": ("physavatar.commands.plan", "run the MLLM planner on an image and audio, print the plan"),
    "curate": ("physavatar.commands.curate", "raw talking videos -> clean training clips (Appendix A)"),
    "extract": ("physavatar.commands.extract", "compute training features for a clip dataset"),
    "train": ("physavatar.commands.train", "train PhysAvatar from a YAML config"),
    "train-vae": ("physavatar.commands.train_vae", "train a small Wan VAE on a clip dataset (the demo's latent space)"),
    "generate": ("physavatar.commands.generate", "reference image + audio -> avatar video"),
    "demo": ("physavatar.commands.demo", "make a world identity speak a sentence with the shipped demo model"),
    "eval": ("physavatar.commands.eval", "compute the paper's metrics (Table 1) for generated videos"),
    "study": ("physavatar.commands.study", "run the visual Turing test web app (Appendix D)"),
}


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, never as a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="physavatar",
        description="PhysAvatar: physically grounded, audio-driven avatar video.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name = argv[0]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from: {', '.join(COMMANDS)}")
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as err:
        if err.name != COMMANDS[name][0]:
            raise
        print(f"physavatar {name}: not available in this version yet", file=sys.stderr)
        return 2
    cmd_parser = argparse.ArgumentParser(prog=f"physavatar {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd_parser)
    # Commands that take free dotted overrides (train) parse them from what argparse does not know.
    if cmd_parser.get_default("overrides") is not None:
        args, rest = cmd_parser.parse_known_args(argv[1:])
        args.overrides = list(args.overrides or []) + rest
    else:
        args = cmd_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (UserError, FileNotFoundError, PermissionError, ValueError) as err:
        print(f"physavatar {name}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
