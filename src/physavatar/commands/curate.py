"""`physavatar curate RAW_DIR OUT_DIR`: raw talking videos -> clean training clips (Appendix A, docs/curation.md).

    physavatar curate raw/ data/curated --workers 2 [--min-sec 3] [--max-sec 15] [--size 512] [--fps 25]
        [--syncnet-weights syncnet_v2.model]

Resumable: rerun the same command after a crash or kill; finished files are skipped.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("raw_dir", metavar="RAW_DIR",
                        help="folder of raw videos (searched recursively; never modified)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="dataset folder: clips/, manifest.jsonl, curation.jsonl, "
                        "report.txt/.png")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes, one file each (default 1)")
    parser.add_argument("--min-sec", type=float, default=3.0, help="shortest clip in seconds (default 3)")
    parser.add_argument("--max-sec", type=float, default=15.0, help="longest clip in seconds (default 15)")
    parser.add_argument("--size", type=int, default=512, help="square output size in pixels (default 512)")
    parser.add_argument("--fps", type=int, default=25, help="output frame rate (default 25)")
    parser.add_argument("--syncnet-weights", metavar="PATH", help="syncnet_python's syncnet_v2.model; without it the "
                        "sync check is skipped (and reported as skipped)")
    parser.add_argument("--sync-min-confidence", type=float, default=3.0, help="drop clips below this Sync-C")
    parser.add_argument("--sync-max-offset", type=int, default=3, help="drop clips whose A/V offset exceeds this "
                        "many frames")
    parser.add_argument("--sync-stride", type=int, default=1, help="SyncNet lip embeddings on every n-th window only "
                        "(1 = the full syncnet_python protocol; larger is faster on CPU)")
    parser.add_argument("--face-detector", choices=("auto", "mediapipe", "haar"), default="auto",
                        help="auto: MediaPipe's face detector and OpenCV's Haar cascade together (Haar alone "
                        "without mediapipe)")
    parser.add_argument("--identity-method", choices=("auto", "dlib", "histogram"), default="auto",
                        help="single-identity check: dlib face descriptors (auto: when installed) or face colour "
                        "histograms (use for the cartoon synthetic world)")
    parser.add_argument("--min-crop-fraction", type=float, default=0.5, help="drop clips whose crop is smaller than "
                        "this fraction of --size (default 0.5: upscale at most 2x)")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="fraction of source files put in 'val'")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from physavatar.curation.config import CurateConfig
    from physavatar.curation.pipeline import curate
    from physavatar.curation.report import format_text

    cfg = CurateConfig(raw_dir=args.raw_dir, out_dir=args.out_dir, workers=args.workers, min_sec=args.min_sec,
                       max_sec=args.max_sec, size=args.size, fps=args.fps, syncnet_weights=args.syncnet_weights,
                       sync_min_confidence=args.sync_min_confidence, sync_max_offset=args.sync_max_offset,
                       sync_stride=args.sync_stride, identity_method=args.identity_method,
                       face_detector=args.face_detector,
                       min_crop_fraction=args.min_crop_fraction, val_fraction=args.val_fraction,
                       progress=not args.quiet)
    summary = curate(cfg)
    print(format_text(summary), end="")
    print(f"curate: {summary['clips_written']} clips ({summary['hours_written']:.3f} h) in {args.out_dir}; "
          f"details in {args.out_dir}/curation.jsonl, chart in {args.out_dir}/report.png")
    return 0
