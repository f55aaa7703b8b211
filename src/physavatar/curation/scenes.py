"""Scene cuts with PySceneDetect's ContentDetector, fed the frames the pipeline already decodes.

Feeding frames ourselves (instead of `scenedetect.detect(path)`) means the video is decoded once for cuts,
faces and identity, at the pipeline's 25 fps clock, so cut frame numbers index the same frames as
everything else (variable-frame-rate inputs included).
"""

from __future__ import annotations

import numpy as np


class SceneCuts:
    def __init__(self, fps: int, threshold: float = 27.0, min_scene_sec: float = 0.6):
        from scenedetect import ContentDetector

        self.fps = float(fps)
        self._detector = ContentDetector(threshold=threshold, min_scene_len=max(1, round(min_scene_sec * fps)))
        self.cuts: list[int] = []

    def feed(self, index: int, frame_bgr: np.ndarray) -> None:
        from scenedetect import FrameTimecode

        for tc in self._detector.process_frame(FrameTimecode(index, fps=self.fps), frame_bgr):
            self.cuts.append(int(tc.frame_num))

    def finish(self, num_frames: int) -> list[tuple[int, int]]:
        """Scenes as [start, end) frame ranges covering [0, num_frames)."""
        from scenedetect import FrameTimecode

        if num_frames > 0:
            for tc in self._detector.post_process(FrameTimecode(num_frames - 1, fps=self.fps)):
                self.cuts.append(int(tc.frame_num))
        return scene_ranges(self.cuts, num_frames)


def scene_ranges(cuts: list[int], num_frames: int) -> list[tuple[int, int]]:
    """[start, end) ranges between sorted cut frames (a cut at c starts a new scene at frame c)."""
    edges = [0] + sorted(c for c in set(cuts) if 0 < c < num_frames) + [num_frames]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]
