"""A clip dataset's stored training features as a few compressed parts, to train on a machine that cannot read
this one's files and takes little per transfer (the demo model's GPU stages: 64 MiB per call).

Only what `ClipDataset` and the trainer read travels: the manifest, and per clip of the split its meta.json,
keypoints, physical-state tokens, audio features, plan, latents and known-frames latents. float32 arrays travel
as float16 (a relative error of at most 2^-11 on features of unit scale), except the keypoints, which travel
exactly: the face, lips and hands masks of the loss are cut from them, and physical-state tokens that are the
tokens of those keypoints (every world clip's) are recomputed from them, bit for bit, instead of travelling. Each
array's bytes are regrouped by byte position before lzma, which compresses float16 ~1.5x better than interleaved. `unpack` writes the files back in the clip
format, float32 again, atomically.

With `media`, each clip's video.mp4 and reference.png travel too (as they are), and with no VAE name its latents
stay behind: what a machine needs to train a new VAE on the clips and then encode them, and the transformer, there.
Without `features` the audio features and plans stay behind too, so the media can go ahead in a call of their own.

    python -m physavatar.data.bundle pack data/world_portrait_v3 --vae vae_p2 --out bundle/  (writes part_*.xz)
    python -m physavatar.data.bundle pack data/world_portrait_v3 --vae none --known none --media --out bundle/
    python -m physavatar.data.bundle unpack bundle/ --out data/world_portrait_v3
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.data.features import feature_paths, known_frames_path
from physavatar.data.manifest import read_manifest
from physavatar.encoders.backend import atomic_save_npz, atomic_write_bytes
from physavatar.io.atomic import atomic_path

FORMAT = 1
EXACT = ("keypoints.npy",)  # files whose float32 arrays must survive bit for bit


@dataclass
class PackReport:
    clips: int
    files: int
    raw_bytes: int
    packed_bytes: int
    parts: list[Path]


def _shuffle(a: np.ndarray) -> bytes:
    raw = np.ascontiguousarray(a).view(np.uint8).reshape(-1, a.dtype.itemsize)
    return raw.T.tobytes()


def _unshuffle(buf: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    raw = np.frombuffer(buf, np.uint8).reshape(dtype.itemsize, -1).T
    return np.ascontiguousarray(raw).view(dtype).reshape(shape)


def _encode(a: np.ndarray, exact: bool) -> tuple[dict, bytes]:
    stored = a.astype(np.float16) if a.dtype == np.float32 and not exact else a
    if stored.dtype.kind in "fiub":
        return {"dtype": str(a.dtype), "stored": str(stored.dtype), "shape": list(a.shape)}, _shuffle(stored)
    buf = io.BytesIO()  # strings and other small non-numeric arrays (backend names): as np.save writes them
    np.save(buf, a, allow_pickle=False)
    return {"npy": True}, buf.getvalue()


def _decode(entry: dict, buf: bytes) -> np.ndarray:
    if entry.get("npy"):
        return np.load(io.BytesIO(buf), allow_pickle=False)
    stored = _unshuffle(buf, np.dtype(entry["stored"]), tuple(entry["shape"]))
    return stored.astype(np.dtype(entry["dtype"]))


def _arrays(path: Path) -> tuple[str, dict[str, np.ndarray], dict[str, str] | None]:
    if path.suffix == ".npy":
        return "npy", {"": np.load(path, allow_pickle=False)}, None
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return "npz", {k: z[k] for k in z.files}, None
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.numpy import load_file

        with safe_open(str(path), "np") as f:
            metadata = f.metadata()
        return "safetensors", load_file(str(path)), metadata
    return "raw", {}, None


def _tokens_of_keypoints(phys_path: Path) -> bool:
    from physavatar.physstate.tokens import encode_keypoints

    tokens = np.load(phys_path)
    kp = np.load(phys_path.parent / "keypoints.npy")
    return tokens.dtype == np.float16 and np.array_equal(encode_keypoints(kp).astype(np.float16), tokens)


def clip_files(root: Path, row: dict, *, vae_name: str | None, audio_backend: str, planner: str,
               known: tuple[int, int] | None, media: bool = False, features: bool = True) -> list[Path]:
    """The files of one clip that travel; no latents without a VAE name, video and reference with `media`, no
    audio features and plan without `features`."""
    clip_dir = root / row["path"]
    paths = feature_paths(clip_dir, audio_backend, planner, vae_name or "")
    files = [clip_dir / "meta.json", clip_dir / "keypoints.npy", paths["phys"]]
    if features:
        files += [paths["audio"], paths["plan"]]
    if vae_name is not None:
        files.append(paths["latents"])
        if known is not None:
            files.append(known_frames_path(clip_dir, vae_name, *known))
    if media:
        files += [clip_dir / "video.mp4", clip_dir / "reference.png"]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise FileNotFoundError(f"clip {row.get('id')}: missing {', '.join(missing)} (run `physavatar extract "
                                f"{root} --vae ...` with the same --vae, audio backend and planner first)")
    return files


def pack(root: str | Path, out: str | Path, *, vae_name: str | None, audio_backend: str = "default",
         planner: str = "default", split: str | None = "train", known: tuple[int, int] | None = (5, 4),
         part_mib: float = 40.0, media: bool = False, features: bool = True) -> PackReport:
    root, out = Path(root), Path(out)
    rows = [r for r in read_manifest(root, required=True) if split is None or r.get("split") == split]
    if not rows:
        raise ValueError(f"{root}: the manifest lists no {split!r} clip")
    files = [root / "manifest.jsonl"]
    for row in rows:
        files += clip_files(root, row, vae_name=vae_name, audio_backend=audio_backend, planner=planner, known=known,
                            media=media, features=features)
    index, blobs = [], []
    for path in files:
        if path.name == "phys_tokens.npy" and _tokens_of_keypoints(path):
            index.append({"path": path.relative_to(root).as_posix(), "kind": "tokens_of_keypoints", "arrays": {}})
            continue
        kind, arrays, metadata = _arrays(path)
        entry = {"path": path.relative_to(root).as_posix(), "kind": kind, "arrays": {}}
        if kind == "raw":
            blob = path.read_bytes()
            entry["bytes"] = len(blob)
            blobs.append(blob)
        for name, a in arrays.items():
            meta, blob = _encode(a, exact=path.name in EXACT)
            entry["arrays"][name] = {**meta, "bytes": len(blob)}
            blobs.append(blob)
        if metadata is not None:
            entry["metadata"] = metadata
        index.append(entry)
    head = json.dumps({"format": FORMAT, "files": index}).encode()
    stream = len(head).to_bytes(8, "little") + head + b"".join(blobs)
    packed = lzma.compress(stream, preset=6)
    out.mkdir(parents=True, exist_ok=True)
    step = max(1, int(part_mib * 2**20))
    parts = []
    for i, start in enumerate(range(0, len(packed), step)):
        part = out / f"part_{i:03d}.xz"
        atomic_write_bytes(part, packed[start:start + step])
        parts.append(part)
    for stale in sorted(out.glob("part_*.xz"))[len(parts):]:  # a longer earlier bundle's tail would corrupt this one
        stale.unlink()
    return PackReport(clips=len(rows), files=len(files), raw_bytes=len(stream), packed_bytes=len(packed), parts=parts)


def unpack(bundle: str | Path, out: str | Path, *, overwrite: bool = False) -> int:
    """Write the bundle's files under `out` (the dataset root); returns how many. A file already there is an error
    unless `overwrite` (the bundle's features are float16-rounded: unpacked over the dataset they came from, they
    would replace the exact ones)."""
    bundle, out = Path(bundle), Path(out)
    parts = sorted(bundle.glob("part_*.xz"))
    if not parts:
        raise FileNotFoundError(f"{bundle}: no part_*.xz (written by `python -m physavatar.data.bundle pack`)")
    try:
        stream = lzma.decompress(b"".join(p.read_bytes() for p in parts))
    except lzma.LZMAError as err:
        raise ValueError(f"{bundle}: the parts {[p.name for p in parts]} do not make one bundle ({err}); "
                         "a part is missing or truncated") from err
    n = int.from_bytes(stream[:8], "little")
    head = json.loads(stream[8:8 + n])
    if head.get("format") != FORMAT:
        raise ValueError(f"{bundle}: bundle format {head.get('format')}, this version reads {FORMAT}")
    there = [e["path"] for e in head["files"] if (out / e["path"]).exists()]
    if there and not overwrite:
        raise FileExistsError(f"{out}: {len(there)} of the bundle's files exist already (e.g. {out / there[0]}); "
                              "unpack into a new folder, or pass --overwrite to replace them")
    pos = 8 + n
    for entry in head["files"]:
        path = out / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if entry["kind"] == "tokens_of_keypoints":
            from physavatar.physstate.tokens import encode_keypoints

            tokens = encode_keypoints(np.load(path.parent / "keypoints.npy")).astype(np.float16)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, tokens, allow_pickle=False)
            continue
        if entry["kind"] == "raw":
            data = stream[pos:pos + entry["bytes"]]
            pos += entry["bytes"]
            atomic_write_bytes(path, data)
            continue
        arrays = {}
        for name, meta in entry["arrays"].items():
            arrays[name] = _decode(meta, stream[pos:pos + meta["bytes"]])
            pos += meta["bytes"]
        if entry["kind"] == "npz":
            atomic_save_npz(path, **arrays)
            continue
        with atomic_path(path) as tmp:
            if entry["kind"] == "npy":
                with open(tmp, "wb") as f:
                    np.save(f, arrays[""], allow_pickle=False)
            else:
                from safetensors.numpy import save_file

                save_file(arrays, str(tmp), metadata=entry.get("metadata"))
    return len(head["files"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m physavatar.data.bundle", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="write a dataset's stored training features as compressed parts")
    p.add_argument("root", help="dataset folder (manifest.jsonl + clips with extracted features)")
    p.add_argument("--out", required=True, help="folder for part_*.xz")
    p.add_argument("--vae", required=True, help="the latents' name (the VAE folder's name at `physavatar extract`); "
                   "'none': no latents (to encode the clips afresh where they arrive: add --media)")
    p.add_argument("--audio-backend", default="default", help="audio features' backend (default: default)")
    p.add_argument("--planner", default="default", help="plan embeddings' planner (default: default)")
    p.add_argument("--split", default="train", help="clips of this split only (default: train)")
    p.add_argument("--known", default="5,4", help="known-frames latents to include, M,N (default 5,4; 'none': skip)")
    p.add_argument("--part-mib", type=float, default=40.0, help="largest part in MiB (default 40)")
    p.add_argument("--media", action="store_true", help="also each clip's video.mp4 and reference.png (to train a "
                   "VAE and encode latents where the bundle arrives)")
    p.add_argument("--no-features", action="store_true", help="leave the audio features and plans behind (with "
                   "--media: what training a VAE needs, sent ahead of the features)")
    u = sub.add_parser("unpack", help="write a bundle's files back into a dataset folder")
    u.add_argument("bundle", help="folder holding part_*.xz")
    u.add_argument("--out", required=True, help="dataset folder to write (created if needed)")
    u.add_argument("--overwrite", action="store_true", help="replace files that exist already (default: refuse)")
    args = parser.parse_args(argv)
    if args.cmd == "pack":
        known = None if args.known == "none" else tuple(int(v) for v in args.known.split(","))
        r = pack(args.root, args.out, vae_name=None if args.vae == "none" else args.vae,
                 audio_backend=args.audio_backend, planner=args.planner, split=args.split, known=known,
                 part_mib=args.part_mib, media=args.media, features=not args.no_features)
        print(f"{r.clips} clips, {r.files} files: {r.raw_bytes / 2**20:.1f} MiB -> {r.packed_bytes / 2**20:.1f} MiB "
              f"in {len(r.parts)} part(s) under {args.out}")
    else:
        print(f"{unpack(args.bundle, args.out, overwrite=args.overwrite)} files written under {args.out}")


if __name__ == "__main__":
    main()
