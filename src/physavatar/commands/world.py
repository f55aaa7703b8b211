"""`physavatar world make|show|skeleton`: the synthetic avatar world (docs/world.md).

    physavatar world make --clips 300 --out data/world --workers 2         # a training dataset
    physavatar world show --identity 7 --out sheet.png                     # look at one identity talking
    physavatar world show --identity 7 --audio me.wav --out talk.mp4       # drive it with your own audio
    physavatar world skeleton --clip data/world/clips/000003 --out pose.mp4 [--from tokens]
"""

from __future__ import annotations

import argparse
from pathlib import Path

# world.identity.FRAMINGS, written out: importing it would load numpy at every CLI start
FRAMINGS = ("mixed", "portrait")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = sub.add_parser("make", help="write a dataset of world clips in the clip format (resumable)")
    make.add_argument("--clips", type=int, required=True, help="number of clips in the dataset")
    make.add_argument("--out", required=True, help="dataset folder (manifest.jsonl + clips/)")
    make.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    make.add_argument("--size", type=int, default=128, help="square frame size: 128, 256 or 512")
    make.add_argument("--frames", type=int, default=81, help="frames per clip, 1 + 4k (default 81)")
    make.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    make.add_argument("--clips-per-identity", type=int, default=4, help="clips of each person (default 4)")
    make.add_argument("--framing", choices=FRAMINGS, default="mixed",
                      help="mixed: wide shots to close-ups (default); portrait: head and chest, the hands when "
                           "they gesture, the face about twice as large (configs/demo_portrait.yaml)")  # fmt: skip
    make.add_argument("--world-version", type=int, choices=(3, 4), default=4,
                      help="4: 40 %% of the clips are running speech (default); 3: phrases and pauses only, the "
                           "data the shipped demo model was trained on (docs/world.md)")  # fmt: skip
    make.add_argument("--quiet", action="store_true", help="no progress bar")

    show = sub.add_parser("show", help="render one identity talking: contact sheet .png or video .mp4")
    show.add_argument("--identity", type=int, default=0, help="identity seed")
    show.add_argument("--clip-seed", type=int, default=0, help="speech and behaviour seed")
    show.add_argument("--audio", help="drive the avatar with this audio file instead of synthetic speech")
    show.add_argument("--size", type=int, default=256)
    show.add_argument("--frames", type=int, default=81, help="frames of synthetic speech (ignored with --audio)")
    show.add_argument("--language", help="speech language (en, en-gb, de, fr, es, it, pt)")
    show.add_argument("--framing", choices=FRAMINGS, default="mixed", help="see `world make`")
    show.add_argument("--columns", type=int, default=8, help="frames on the contact sheet")
    show.add_argument("--out", required=True, help=".png = contact sheet, .mp4 = video with audio + skeleton")

    skel = sub.add_parser("skeleton", help="draw a clip's keypoints or physical-state tokens as a skeleton video")
    skel.add_argument("--clip", help="clip folder (reads keypoints.npy or phys_tokens.npy, audio.wav)")
    skel.add_argument("--tokens", help="a (F, 4, 256) .npy of physical-state tokens, e.g. predicted ones")
    skel.add_argument("--from", dest="source", choices=("keypoints", "tokens"), default="tokens")
    skel.add_argument("--size", type=int, default=256)
    skel.add_argument("--overlay", action="store_true", help="draw over the clip's video instead of black")
    skel.add_argument("--out", required=True, help="output .mp4")


def _make(args) -> int:
    from physavatar.world.dataset import WorldDatasetConfig, make_dataset, read_manifest

    cfg = WorldDatasetConfig(out=args.out, clips=args.clips, seed=args.seed, size=args.size, frames=args.frames,
                             workers=args.workers, clips_per_identity=args.clips_per_identity,
                             framing=args.framing, version=args.world_version)  # fmt: skip
    added = make_dataset(cfg, progress=not args.quiet)
    total = len(read_manifest(args.out))
    print(f"world: {len(added)} clips written, {total} in {Path(args.out) / 'manifest.jsonl'}")
    return 0


def _show(args) -> int:
    import numpy as np

    from physavatar.world.clip import drive_avatar, make_clip
    from physavatar.world.identity import make_identity

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".mp4"):
        raise ValueError(f"--out {out}: use a .png (contact sheet) or .mp4 (video) path")
    if args.audio:
        from physavatar.io.audio import load_audio

        clip = drive_avatar(make_identity(args.identity, args.framing), load_audio(args.audio), args.clip_seed,
                            args.size)
    else:
        clip = make_clip(args.identity, args.clip_seed, args.frames, args.size, args.language, framing=args.framing)
    if out.suffix.lower() == ".png":
        from PIL import Image

        from physavatar.io.atomic import atomic_path
        from physavatar.world.sheet import contact_sheet

        with atomic_path(out) as tmp:
            Image.fromarray(contact_sheet(clip, args.columns)).save(tmp)
    else:
        from physavatar.io.video import write_video
        from physavatar.physstate.draw import skeleton_video

        skel = skeleton_video(tokens=clip.tokens, size=args.size)
        write_video(out, np.concatenate([clip.frames, skel], axis=2), audio=clip.wav)
    if clip.speech is not None:
        print(f"world: identity {args.identity} says {clip.speech.text!r} ({clip.speech.voice})")
    print(f"world: wrote {out}")
    return 0


def _skeleton(args) -> int:
    import numpy as np

    from physavatar.io.video import write_video
    from physavatar.physstate.draw import skeleton_video

    if (args.clip is None) == (args.tokens is None):
        raise ValueError("give --clip CLIP_DIR or --tokens FILE.npy (one of them)")
    audio, frames = None, None
    if args.tokens:
        kp, tokens = None, np.load(args.tokens)
    else:
        clip = Path(args.clip)
        name = "phys_tokens.npy" if args.source == "tokens" else "keypoints.npy"
        if not (clip / name).exists():
            raise FileNotFoundError(f"{clip / name} not found; --clip must be a clip folder (docs/clip_format.md)")
        data = np.load(clip / name)
        kp, tokens = (None, data) if args.source == "tokens" else (data, None)
        if (clip / "audio.wav").exists():
            from physavatar.io.audio import load_audio

            audio = load_audio(clip / "audio.wav")
        if args.overlay:
            from physavatar.io.video import read_video

            frames = read_video(clip / "video.mp4")
    video = skeleton_video(kp=kp, tokens=tokens, size=args.size, frames=frames)
    write_video(args.out, video, audio=audio)
    print(f"world: wrote {args.out} ({len(video)} frames)")
    return 0


def run(args) -> int:
    return {"make": _make, "show": _show, "skeleton": _skeleton}[args.action](args)
