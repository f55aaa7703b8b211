"""Long-form chunk planning (paper §3.5, Figure 3): which frames each generation call makes, in which pass.

Interleaved plan. The audio timeline (one entry per video frame, 25 fps) is cut into contiguous chunks.
Odd chunks (paper numbering 1, 3, 5, ...) are generated independently in pass 1, anchored only to the
reference image. Each even chunk is generated in pass 2 by VACE frame interpolation: its window starts with
the m tail frames of the previous odd chunk and ends with the n head frames of the next odd chunk, marked as
known by the frame mask. Concatenating every chunk's own frames gives the video; every audio frame is
covered exactly once. Two passes whatever the length (one when a single chunk suffices).

Design decisions (the paper leaves them open):
- The model always generates windows of exactly `chunk_frames` frames (1 + 4k, e.g. 81): that is the length
  it was trained on and what the VAE needs.
- An odd chunk owns its whole window. An even chunk's window is [m known tail | new | n known head], so it
  owns chunk_frames - m - n new frames (72 for 81/5/4). Its window's audio is the true audio of those
  positions: the known frames were generated from the same audio frames by the neighbours, and they are
  dropped at concatenation (the neighbours own them).
- A last even chunk has no next odd chunk: it is conditioned on the tail only and may own up to
  chunk_frames - m frames. If the audio left after an odd chunk exceeds that, an even chunk of the regular
  size follows with a (short) last odd chunk that then owns more than n frames, so head frames always lie
  inside the audio.
- A short last chunk is generated at full window length with the audio padded past the end (`padding`
  frames; the caller chooses how to pad, e.g. silence), and its frames past the end are trimmed.

Indices: `Chunk.index` is 0-based (index 0 is the paper's chunk 1); frame ranges are half-open [start, end)
absolute video frame numbers; "positions" are offsets inside a chunk's generation window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from physavatar.constants import SAMPLES_PER_FRAME, num_latent_frames

ChunkKind = Literal["odd", "even", "autoregressive"]


@dataclass(frozen=True)
class KnownFrames:
    """Frames copied from another chunk's output into this chunk's window as VACE conditioning."""

    source_chunk: int  # index of the chunk that generated them (and owns them in the final video)
    frames: tuple[int, int]  # absolute video frames [start, end)
    source_positions: tuple[int, int]  # where they sit inside the source chunk's window
    window_positions: tuple[int, int]  # where they go inside this chunk's window

    @property
    def count(self) -> int:
        return self.frames[1] - self.frames[0]


@dataclass(frozen=True)
class Chunk:
    index: int  # 0-based; paper chunk number = index + 1
    pass_number: int  # 1 = generated first (odd chunks); 2 = after pass 1 finished (even chunks); AR: index + 1
    kind: ChunkKind
    output: tuple[int, int]  # video frames this chunk owns in the final video, [start, end)
    window: tuple[int, int]  # audio frames of its generation window, [start, end); end may pass the audio
    padding: int  # window frames past the end of the audio (to pad, then trim)
    tail: KnownFrames | None = None  # m frames from the previous chunk, at the window's start
    head: KnownFrames | None = None  # n frames from the next chunk, at the window's end

    @property
    def num_frames(self) -> int:
        """Frames this chunk contributes to the final video."""
        return self.output[1] - self.output[0]

    @property
    def window_frames(self) -> int:
        return self.window[1] - self.window[0]

    @property
    def audio_samples(self) -> tuple[int, int]:
        """The window as audio sample offsets [start, end) at SAMPLE_RATE (end may pass the audio: pad)."""
        return self.window[0] * SAMPLES_PER_FRAME, self.window[1] * SAMPLES_PER_FRAME

    @property
    def keep(self) -> tuple[int, int]:
        """Window positions [start, end) of the frames this chunk owns (what survives concatenation)."""
        return self.output[0] - self.window[0], self.output[1] - self.window[0]

    def generate_mask(self) -> tuple[int, ...]:
        """VACE frame mask over the window: 0 = known (copied from a neighbour), 1 = to generate."""
        mask = [1] * self.window_frames
        for known in (self.tail, self.head):
            if known is not None:
                for pos in range(*known.window_positions):
                    mask[pos] = 0
        return tuple(mask)


@dataclass(frozen=True)
class ChunkPlan:
    total_frames: int
    chunk_frames: int
    chunks: tuple[Chunk, ...]

    @property
    def num_passes(self) -> int:
        return max(c.pass_number for c in self.chunks)

    def passes(self) -> tuple[tuple[Chunk, ...], ...]:
        """Chunks grouped by pass; chunks within one pass are independent (run them in parallel)."""
        return tuple(tuple(c for c in self.chunks if c.pass_number == p) for p in range(1, self.num_passes + 1))


def _check_args(total_frames: int, chunk_frames: int, **known: int) -> None:
    if not isinstance(total_frames, int) or total_frames < 1:
        raise ValueError(f"total_frames={total_frames!r}: give the audio length in video frames (>= 1)")
    try:
        num_latent_frames(chunk_frames)
    except (TypeError, ValueError):
        raise ValueError(
            f"chunk_frames={chunk_frames!r}: the model generates windows of 1 + 4k frames for the Wan VAE; use e.g. 81"
        ) from None
    for name, value in known.items():
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r} must be a non-negative int")
    if sum(known.values()) >= chunk_frames:
        names = " + ".join(known)
        raise ValueError(
            f"{names} = {sum(known.values())} known frames leave no new frame in a {chunk_frames}-frame window; "
            f"use a longer chunk_frames or fewer known frames"
        )


def _independent(index: int, start: int, total: int, width: int, pass_number: int, kind: ChunkKind) -> Chunk:
    """A chunk that owns its whole window from `start` (trimmed at the audio end)."""
    return Chunk(
        index=index,
        pass_number=pass_number,
        kind=kind,
        output=(start, min(start + width, total)),
        window=(start, start + width),
        padding=max(0, start + width - total),
    )


def plan_interleaved(total_frames: int, chunk_frames: int = 81, tail: int = 5, head: int = 4) -> ChunkPlan:
    """The paper's interleaved plan (odd chunks in pass 1, even chunks interpolated in pass 2); m = tail,
    n = head. See the module docstring for the layout decisions."""
    _check_args(total_frames, chunk_frames, tail=tail, head=head)
    if tail < 1:
        raise ValueError(f"tail={tail}: an even chunk needs at least one tail frame from the previous odd chunk")
    width = chunk_frames
    even_new = width - tail - head  # new frames of an even chunk between two odd chunks
    last_even_max = width - tail  # a last even chunk has no head frames
    chunks: list[Chunk] = [_independent(0, 0, total_frames, width, 1, "odd")]
    pos = chunks[0].output[1]
    while pos < total_frames:
        prev = chunks[-1]  # always an odd chunk that owns >= tail frames ending at pos
        remaining = total_frames - pos
        start = pos - tail  # window start: the previous odd chunk's last `tail` frames
        tail_known = KnownFrames(
            source_chunk=prev.index,
            frames=(start, pos),
            source_positions=(start - prev.window[0], pos - prev.window[0]),
            window_positions=(0, tail),
        )
        if remaining <= last_even_max:
            # last chunk: even, conditioned on the tail only, trimmed at the audio end
            chunks.append(
                Chunk(
                    index=len(chunks),
                    pass_number=2,
                    kind="even",
                    output=(pos, total_frames),
                    window=(start, start + width),
                    padding=max(0, start + width - total_frames),
                    tail=tail_known,
                )
            )
            break
        # an even chunk between two odd chunks; the next odd chunk owns remaining - even_new > head frames
        nxt = pos + even_new  # first frame of the next odd chunk (= its window start)
        head_known = KnownFrames(
            source_chunk=len(chunks) + 1,
            frames=(nxt, nxt + head),
            source_positions=(0, head),
            window_positions=(width - head, width),
        )
        even = Chunk(
            index=len(chunks),
            pass_number=2,
            kind="even",
            output=(pos, nxt),
            window=(start, nxt + head),  # width frames, all inside the audio
            padding=0,
            tail=tail_known,
            head=head_known if head else None,
        )
        odd = _independent(len(chunks) + 1, nxt, total_frames, width, 1, "odd")
        chunks += [even, odd]
        pos = odd.output[1]
    return ChunkPlan(total_frames, chunk_frames, tuple(chunks))


def plan_autoregressive(total_frames: int, chunk_frames: int = 81, overlap: int = 5) -> ChunkPlan:
    """Autoregressive baseline: chunk k is conditioned on the last `overlap` frames of chunk k-1 (at its
    window start) and owns the next chunk_frames - overlap frames. Strictly sequential: one pass per chunk."""
    _check_args(total_frames, chunk_frames, overlap=overlap)
    width = chunk_frames
    chunks: list[Chunk] = [_independent(0, 0, total_frames, width, 1, "autoregressive")]
    pos = chunks[0].output[1]
    while pos < total_frames:
        prev = chunks[-1]
        start = pos - overlap
        known = None
        if overlap:
            known = KnownFrames(
                source_chunk=prev.index,
                frames=(start, pos),
                source_positions=(start - prev.window[0], pos - prev.window[0]),
                window_positions=(0, overlap),
            )
        index = len(chunks)
        end = min(start + width, total_frames)
        chunks.append(
            Chunk(
                index=index,
                pass_number=index + 1,
                kind="autoregressive",
                output=(pos, end),
                window=(start, start + width),
                padding=max(0, start + width - total_frames),
                tail=known,
            )
        )
        pos = end
    return ChunkPlan(total_frames, chunk_frames, tuple(chunks))


def assign_to_ranks(chunks: ChunkPlan | Sequence[Chunk], world_size: int) -> tuple[tuple[Chunk, ...], ...]:
    """Spread each pass's chunks over `world_size` ranks: result[r] = rank r's chunks in pass order.

    Every chunk costs one full window, so balancing counts balances time. Within a pass the ranks' counts
    differ by at most one; the round-robin continues across passes so the totals also differ by at most
    one. Ranks must finish pass p (a barrier) before any rank starts pass p + 1.
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size={world_size!r} must be a positive int (number of ranks)")
    items = chunks.chunks if isinstance(chunks, ChunkPlan) else tuple(chunks)
    ranks: list[list[Chunk]] = [[] for _ in range(world_size)]
    turn = 0
    for pass_number in sorted({c.pass_number for c in items}):
        for chunk in (c for c in items if c.pass_number == pass_number):
            ranks[turn % world_size].append(chunk)
            turn += 1
    return tuple(tuple(r) for r in ranks)


def stitch(plan: ChunkPlan, windows: Sequence, dim: int = 0):
    """Concatenate the chunks' generated windows into the final video: window i cropped to chunk i's `keep`
    range along `dim` (frames), in order. Works on torch tensors (or anything with `.narrow` and torch.cat)."""
    import torch  # local import: the planner itself needs no torch

    if len(windows) != len(plan.chunks):
        raise ValueError(f"got {len(windows)} generated windows for a plan of {len(plan.chunks)} chunks")
    parts = []
    for chunk, window in zip(plan.chunks, windows):
        if window.shape[dim] != chunk.window_frames:
            raise ValueError(
                f"chunk {chunk.index}: generated window has {window.shape[dim]} frames along dim {dim}, "
                f"the plan expects {chunk.window_frames}"
            )
        start, end = chunk.keep
        parts.append(window.narrow(dim, start, end - start))
    return torch.cat(parts, dim=dim)
