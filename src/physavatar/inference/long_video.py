"""Long-form generation over a chunk plan, resumable, streamed, with colour correction at the joins (§3.5).

Each chunk's decoded generation window is written to a work folder as soon as it exists
(chunk_<index>.npz: frames uint8 (W, H, W, 3) + physical-state tokens (W, 4, 256)), so a crashed job
resumes without redoing finished chunks, and later passes read their known frames from there. The final video
is streamed from these files in order: memory holds one chunk, whatever the video's length.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.inference.chunks import Chunk, ChunkPlan, assign_to_ranks

log = logging.getLogger(__name__)
JOIN_THRESHOLD = 3.0  # mean |RGB difference| (0-255) across a join above which the even chunk is corrected


class WorkDir:
    """The folder of finished chunks of one job; refuses to mix jobs with different inputs or settings."""

    def __init__(self, path: str | Path, job: dict):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.key = hashlib.sha256(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()[:16]
        stamp = self.path / "job.json"
        if stamp.exists():
            saved = json.loads(stamp.read_text())
            if saved.get("key") != self.key:
                raise ValueError(f"{self.path} holds chunks of another job (other inputs or settings); remove it "
                                 "or choose another --work-dir")
        else:
            from physavatar.io.atomic import atomic_write

            with atomic_write(stamp, "w") as f:
                json.dump({"key": self.key, "job": job}, f, indent=1, default=str)

    def chunk_file(self, chunk: Chunk) -> Path:
        return self.path / f"chunk_{chunk.index:04d}.npz"

    def done(self, chunk: Chunk) -> bool:
        return self.chunk_file(chunk).exists()

    def save(self, chunk: Chunk, frames: np.ndarray, phys: np.ndarray) -> None:
        from physavatar.io.atomic import atomic_write

        buf = io.BytesIO()
        np.savez(buf, frames=frames, phys=phys.astype(np.float16))
        with atomic_write(self.chunk_file(chunk)) as f:
            f.write(buf.getvalue())

    def load(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.chunk_file(chunk)) as data:
            return data["frames"], data["phys"].astype(np.float32)


@dataclass
class ChunkRequest:
    """What the pipeline needs to generate one window."""

    chunk: Chunk
    known: np.ndarray | None  # uint8 (W, H, W, 3) with known frames in place (zeros elsewhere), or None
    frame_mask: np.ndarray  # (W,) 1 = generate, 0 = known


def known_frames(chunk: Chunk, work: WorkDir, size: tuple[int, int]) -> ChunkRequest:
    mask = np.asarray(chunk.generate_mask(), dtype=np.float32)
    if chunk.tail is None and chunk.head is None:
        return ChunkRequest(chunk, None, mask)
    known = np.zeros((chunk.window_frames, *size, 3), dtype=np.uint8)
    for part in (chunk.tail, chunk.head):
        if part is None:
            continue
        with np.load(work.path / f"chunk_{part.source_chunk:04d}.npz") as data:
            frames = data["frames"]
        a, b = part.source_positions
        c, d = part.window_positions
        known[c:d] = frames[a:b]
    return ChunkRequest(chunk, known, mask)


def run_plan(plan: ChunkPlan, work: WorkDir, generate: Callable[[ChunkRequest], tuple[np.ndarray, np.ndarray]],
             size: tuple[int, int], *, rank: int = 0, world_size: int = 1, barrier: Callable[[], None] = lambda: None,
             progress: bool = True) -> None:
    """Generate every chunk of `plan` this rank owns, pass by pass; finished chunks are skipped."""
    from tqdm import tqdm

    bar = tqdm(total=len(plan.chunks), unit="chunk", disable=not progress or rank != 0, desc="chunks")
    for chunks in plan.passes():
        mine = assign_to_ranks(chunks, world_size)[rank]
        for chunk in mine:
            if not work.done(chunk):
                frames, phys = generate(known_frames(chunk, work, size))
                work.save(chunk, frames, phys)
            bar.update(world_size if world_size > 1 else 1)
        barrier()  # the next pass reads this pass's frames
    bar.close()


def join_offsets(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-channel mean colour difference (after - before) between two frames, in 0-255 levels."""
    return after.reshape(-1, 3).mean(0) - before.reshape(-1, 3).mean(0)


def correct_chunk(frames: np.ndarray, start_offset: np.ndarray | None, end_offset: np.ndarray | None) -> np.ndarray:
    """Remove colour jumps at a chunk's joins: a per-channel offset that ramps linearly across the chunk, equal
    to -start_offset at its first frame and -end_offset at its last (either may be None: no correction there)."""
    n = len(frames)
    start = np.zeros(3) if start_offset is None else -np.asarray(start_offset, float)
    end = np.zeros(3) if end_offset is None else -np.asarray(end_offset, float)
    ramp = np.linspace(0.0, 1.0, n)[:, None] if n > 1 else np.zeros((1, 1))
    offsets = (1 - ramp) * start + ramp * end  # (n, 3)
    return np.clip(frames.astype(np.float32) + offsets[:, None, None, :], 0, 255).round().astype(np.uint8)


def stitch_to_video(plan: ChunkPlan, work: WorkDir, writer, *, correct_joins: bool = True,
                    on_frames: Callable[[np.ndarray, np.ndarray], None] | None = None) -> dict:
    """Stream every chunk's own frames into `writer` in order; returns the join report."""
    order = sorted(plan.chunks, key=lambda c: c.output[0])
    report = {"threshold": JOIN_THRESHOLD, "joins": []}

    def own(chunk):
        frames, phys = work.load(chunk)
        a, b = chunk.keep
        return frames[a:b], phys[a:b]

    previous_last = None
    for position, chunk in enumerate(order):
        frames, phys = own(chunk)
        if correct_joins and chunk.kind != "odd" and position > 0:
            start = join_offsets(previous_last, frames[0])
            end = None
            if position + 1 < len(order) and chunk.kind == "even":
                nxt, _ = own(order[position + 1])
                end = join_offsets(nxt[0], frames[-1])
            big_start = float(np.abs(start).mean()) > JOIN_THRESHOLD
            big_end = end is not None and float(np.abs(end).mean()) > JOIN_THRESHOLD
            if big_start or big_end:
                frames = correct_chunk(frames, start if big_start else None, end if big_end else None)
        if position > 0:
            jump = float(np.abs(join_offsets(previous_last, frames[0])).mean())
            report["joins"].append({"frame": chunk.output[0], "mean_abs_rgb_diff": round(jump, 3)})
        writer.write(frames)
        if on_frames is not None:
            on_frames(frames, phys)
        previous_last = frames[-1]
    return report
