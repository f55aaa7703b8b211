"""`physavatar plan --image IMG --audio AUDIO [--edit "…"] [--planner …]`: print the physical plan (§3.4).

The plan text, its metadata (backend, prompt, edit) and its embeddings e_con / e_tok are saved to --out
(plan.txt, plan.json, plan.npz) and the command says where.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="reference image (jpg/png)")
    parser.add_argument("--audio", required=True, help="speech audio (any format PyAV reads, or a video)")
    parser.add_argument("--edit", default=None, help='text edit appended to the prompt, e.g. "the person is angry"')
    parser.add_argument("--planner", choices=("default", "qwen-omni"), default="default",
                        help="default: offline heuristic planner (rule-based, not an MLLM); qwen-omni: the "
                             "paper's Qwen2.5-Omni Thinker from --model")
    parser.add_argument("--model", default=None, help="local Qwen2.5-Omni (3B/7B) folder for --planner qwen-omni")
    parser.add_argument("--text-encoder", choices=("native", "t5"), default="native",
                        help="t5: re-encode the plan text with a local UMT5 encoder (the 'MLLM via T5' ablation)")
    parser.add_argument("--t5", default=None, help="local UMT5 encoder folder for --text-encoder t5")
    parser.add_argument("--max-new-tokens", type=int, default=160, help="plan length cap (qwen-omni)")
    parser.add_argument("--device", default="cpu", help="torch device for qwen-omni / t5 (e.g. cuda)")
    parser.add_argument("--out", default=None,
                        help="folder for plan.txt / plan.json / plan.npz "
                             "(default: plans/<image>__<audio>[__edit-<hash>])")
    parser.add_argument("--no-cache", action="store_true", help="recompute even if this plan is cached")


def default_out_dir(image: str, audio: str, edit: str | None) -> Path:
    """plans/<image>__<audio>[__edit-<hash>]: an edited plan never overwrites the unedited one."""
    import hashlib

    name = f"{Path(image).stem}__{Path(audio).stem}"
    if edit:
        name += "__edit-" + hashlib.sha256(edit.encode("utf-8")).hexdigest()[:8]
    return Path("plans") / name


def run(args: argparse.Namespace) -> int:
    from physavatar.encoders.planner import PlannerConfig, load_planner
    from physavatar.io.audio import load_audio
    from physavatar.io.image import load_image

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens {args.max_new_tokens}: give a positive token cap (e.g. 160)")
    image = load_image(args.image)
    audio = load_audio(args.audio)
    config = PlannerConfig(backend=args.planner, path=args.model, text_encoder=args.text_encoder, t5_path=args.t5,
                           max_new_tokens=args.max_new_tokens, device=args.device)
    planner = load_planner(config)
    plan = planner.plan(image, audio, edit=args.edit, use_cache=not args.no_cache)
    out = Path(args.out) if args.out else default_out_dir(args.image, args.audio, plan.edit)
    paths = plan.save(out)

    kind = ("heuristic planner: rule-based audio/image measurements, not a multimodal LLM"
            if plan.is_heuristic else "MLLM planner")
    print(f"Plan ({kind}; backend {plan.backend}):")
    print(plan.text)
    if plan.edit:
        print(f"Edit applied: {plan.edit}")
    L, C = plan.e_con.shape
    print(f"Embeddings e_con, e_tok ({L} tokens x {C}) saved to {paths['embeddings']}")
    print(f"Plan text saved to {paths['text']} (metadata: {paths['meta']})")
    return 0
