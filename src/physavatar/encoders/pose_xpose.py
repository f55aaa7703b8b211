"""The paper's pose backend: X-Pose (Yang et al., ECCV 2024) object-level decoder tokens (Appendix B).

X-Pose is not on any package registry and its weights are on model hubs only, so this backend is optional:
install it yourself (see docs/pose.md), then

    enc = load_pose_encoder("xpose", repo="/src/X-Pose", checkpoint="/models/unipose_swint.pth")

NOT RUN HERE: no X-Pose code or weights can be fetched where physavatar is developed, so the model call
(`XPoseEncoder._forward`) has never been executed; the pure parts it relies on are tested on fake decoder
outputs (`object_candidates`, `select_object_tokens`), and so is the error raised when X-Pose is missing.

How tokens are taken (Appendix B). Per frame X-Pose runs once per instance prompt, "person" (17 COCO keypoint
prompts), "face" (68) and "hand" (21). Its decoder holds `num_group` (50) object queries, each followed by
`num_body_points` (68) keypoint queries; after the last decoder layer, the hidden state of each object
query is that object's 256-d token and `sigmoid(pred_logits).max(-1)` its score. X-Pose's forward returns
only logits, boxes and keypoints, so the hidden states are read with a forward hook on `model.transformer`
(its first output, `hs`, a list with one (B, num_group * (num_body_points + 1), 256) tensor per layer).
The physical state of the frame is the top-1 "person" token (body), the top-1 "face" token and the top-2
"hand" tokens, 4 x 256 = 1024 values, as in the paper. The two hands go to the subject's left / right slot
by matching their wrists to the top body's wrists (`assign_hands`). Below `min_score` a slot is empty:
a zero token and zero-confidence keypoints. Keypoints are the chosen objects' keypoint-level outputs, with
the object score as the confidence of each of its points (X-Pose's per-point visibility is a constant).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.constants import NUM_KEYPOINTS, PHYS_TOKEN_DIM, PHYS_TOKENS_PER_FRAME
from physavatar.encoders.pose import PoseFeatures, assign_hands, check_frames
from physavatar.physstate.layout import BODY_NAMES, FACE_NAMES, HAND_NAMES, PART_SLICES, B

INSTALL_HINT = (
    "X-Pose is optional and not on PyPI: git clone https://github.com/IDEA-Research/X-Pose, follow its "
    "README (pip install -r requirements.txt, build models/UniPose/ops, `pip install "
    "git+https://github.com/openai/CLIP.git`), download its checkpoint (e.g. unipose_swint.pth) yourself, then "
    "pass repo=<the clone> checkpoint=<the .pth> (CLI: --xpose-repo, --xpose-checkpoint [--xpose-config]); "
    "or use the offline default backend 'mediapipe'"
)

# Instance prompt and keypoint count of each part; X-Pose's predefined_keypoints uses the Figure S2 names.
PROMPTS = {"body": ("person", len(BODY_NAMES)), "face": ("face", len(FACE_NAMES)), "hand": ("hand", len(HAND_NAMES))}


class XPoseNotAvailableError(ImportError):
    """The X-Pose code, its CLIP dependency, config or checkpoint cannot be found."""


@dataclass
class XPoseConfig:
    repo: str | None = None  # X-Pose git clone (holds models/, util/, predefined_keypoints.py)
    checkpoint: str | None = None  # X-Pose weights, e.g. unipose_swint.pth
    config: str | None = None  # model config; default <repo>/config_model/UniPose_SwinT.py
    device: str = "cpu"  # "cuda" for bulk extraction (X-Pose's deformable attention op needs CUDA to be fast)
    min_score: float = 0.1  # object score below which a slot stays empty (X-Pose's default box threshold)
    short_side: int = 800  # X-Pose's test-time resize: short side 800, long side at most 1333
    max_size: int = 1333


# -- pure parts (tested on fake decoder outputs) --


def object_candidates(hs_last: np.ndarray, logits: np.ndarray, keypoints: np.ndarray, num_body_points: int,
                      num_kpts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's X-Pose outputs for one instance prompt -> (tokens (Q, 256), scores (Q,), keypoints (Q, K, 2)).

    hs_last: (num_group * (num_body_points + 1), 256) last-layer decoder states; every (num_body_points + 1)-th
    row, starting at 0, is an object query. logits: (Q, T) pre-sigmoid class logits; keypoints: (Q, >= 2K)
    x, y pairs in [0, 1] (X-Pose's `pred_keypoints` layout: all x, y pairs first, then visibilities).
    """
    hs_last, logits, keypoints = np.asarray(hs_last), np.asarray(logits), np.asarray(keypoints)
    stride, groups = num_body_points + 1, len(logits)
    if len(keypoints) != groups:
        raise ValueError(f"{groups} object logits but {len(keypoints)} keypoint rows")
    if hs_last.ndim != 2 or hs_last.shape[0] < groups * stride:
        raise ValueError(f"decoder states {hs_last.shape}: expected at least {groups} groups x {stride} rows "
                         "(one object query + num_body_points keypoint queries per group)")
    # Any denoising queries come first (none at inference); the matched groups are the last groups * stride rows.
    tokens = hs_last[-groups * stride:][0::stride]  # (Q, 256): object queries only, as X-Pose's box head reads them
    with np.errstate(over="ignore"):
        scores = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).max(-1)  # -inf padding -> 0
    kp = keypoints[:, : 2 * num_kpts].reshape(len(keypoints), num_kpts, 2)
    return tokens.astype(np.float32), scores.astype(np.float32), kp.astype(np.float32)


def select_object_tokens(candidates: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], min_score: float = 0.1,
                         aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Appendix B's selection: top-1 body, top-1 face, top-2 hands -> tokens (4, 256), keypoints (127, 3), picks.

    candidates: {"body" | "face" | "hand": (tokens (Q, 256), scores (Q,), keypoints (Q, K, 2))}.
    picks maps "body", "face", "left_hand", "right_hand" to the chosen query index (-1: slot empty).
    """
    tokens = np.zeros((PHYS_TOKENS_PER_FRAME, PHYS_TOKEN_DIM), np.float32)
    kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    picks = {"body": -1, "face": -1, "left_hand": -1, "right_hand": -1}
    slot = {"body": 0, "face": 1, "left_hand": 2, "right_hand": 3}

    def put(part: str, index: int, tok: np.ndarray, score: float, points: np.ndarray) -> None:
        tokens[slot[part]] = tok
        kp[PART_SLICES[part], :2] = np.clip(points, 0.0, 1.0)
        kp[PART_SLICES[part], 2] = score
        picks[part] = int(index)

    for part in ("body", "face"):  # 1. top-1 body and face
        if part in candidates:
            tok, score, points = candidates[part]
            if len(score) and score.max() >= min_score:
                i = int(np.argmax(score))
                put(part, i, tok[i], float(score[i]), points[i])
    if "hand" in candidates:  # 2. top-2 hands, assigned to the subject's sides
        tok, score, points = candidates["hand"]
        order = [int(i) for i in np.argsort(-score, kind="stable")[:2] if score[i] >= min_score]
        body_wrists = kp[[B["left wrist"], B["right wrist"]], :2] if picks["body"] >= 0 else None
        sides = assign_hands(points[order, 0] if order else np.zeros((0, 2)), body_wrists, None, aspect)
        for i, side in zip(order, sides):
            put(side, i, tok[i], float(score[i]), points[i])
    return tokens, kp, picks


# -- the model (not run here: see the module docstring) --


def _import_xpose(repo: Path):
    """Import X-Pose from its clone; every failure becomes XPoseNotAvailableError with the install hint."""
    if not (repo / "models").is_dir() or not (repo / "util").is_dir():
        raise XPoseNotAvailableError(f"{repo}: not an X-Pose clone (no models/ and util/ folders). {INSTALL_HINT}")
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))  # X-Pose is a script repo: its packages are top-level (models, util)
    try:
        import clip  # noqa: F401  (openai CLIP: X-Pose's text encoder for the prompts)
        import predefined_keypoints
        from models import build_model
        from util.config import Config
        from util.utils import clean_state_dict
    except ImportError as err:
        raise XPoseNotAvailableError(f"importing X-Pose from {repo} failed ({err}). {INSTALL_HINT}") from err
    import models

    # X-Pose's package names are generic: make sure it is the clone's `models` that was imported.
    if repo.resolve() not in Path(models.__file__).resolve().parents:
        raise XPoseNotAvailableError(f"another `models` package ({models.__file__}) shadows X-Pose's in {repo}; "
                                     "run in a fresh process or environment")
    return build_model, Config, clean_state_dict, predefined_keypoints


class XPoseEncoder:
    """Frames (F, H, W, 3) uint8 RGB -> PoseFeatures with backend "xpose:<checkpoint name>"."""

    def __init__(self, config: XPoseConfig):
        self.config = c = config
        if not c.repo or not c.checkpoint:
            raise XPoseNotAvailableError(f"the 'xpose' pose backend needs repo= and checkpoint=. {INSTALL_HINT}")
        repo = Path(c.repo).expanduser()
        if not repo.is_dir():
            raise XPoseNotAvailableError(f"{repo}: no such X-Pose folder. {INSTALL_HINT}")
        ckpt = Path(c.checkpoint).expanduser()
        if not ckpt.is_file():
            raise XPoseNotAvailableError(f"{ckpt}: no such X-Pose checkpoint file. {INSTALL_HINT}")
        cfg_path = Path(c.config).expanduser() if c.config else repo / "config_model" / "UniPose_SwinT.py"
        if not cfg_path.is_file():
            raise XPoseNotAvailableError(f"{cfg_path}: no such X-Pose model config; pass config=<.py>. {INSTALL_HINT}")
        build_model, Config, clean_state_dict, predefined = _import_xpose(repo)
        import torch

        # 1. build and load, as X-Pose's inference_on_a_image.py does
        args = Config.fromfile(os.fspath(cfg_path))
        args.device = c.device
        self.model = build_model(args)
        state = torch.load(os.fspath(ckpt), map_location="cpu")
        self.model.load_state_dict(clean_state_dict(state["model"]), strict=False)
        self.model.eval().to(c.device)
        # 2. the decoder states are not returned: catch them on their way out of the transformer
        self._hs = None
        self.model.transformer.register_forward_hook(lambda mod, inp, out: setattr(self, "_hs", out[0]))
        # 3. text prompts, encoded once per part with X-Pose's CLIP
        self.targets = {part: self._target(name, getattr(predefined, name)["keypoints"])
                        for part, (name, _) in PROMPTS.items()}
        self.backend = f"xpose:{ckpt.stem}"

    def _target(self, instance: str, keypoint_names: list[str]) -> dict:
        import clip
        import torch

        dev = self.config.device
        with torch.no_grad():
            ins = self.model.clip_model.encode_text(clip.tokenize(f"a photo of {instance}").to(dev)).float()
            kpt = torch.cat([self.model.clip_model.encode_text(clip.tokenize(f"a photo of {k.lower()}").to(dev))
                             for k in keypoint_names]).float()
        pad = torch.zeros(100 - len(kpt), kpt.shape[1], device=dev)
        vis = torch.cat([torch.ones(len(kpt), device=dev), torch.zeros(len(pad), device=dev)])
        return {"instance_text_prompt": [instance], "keypoint_text_prompt": keypoint_names,
                "object_embeddings_text": ins, "kpts_embeddings_text": torch.cat([kpt, pad]), "kpt_vis_text": vis}

    def _preprocess(self, frame: np.ndarray):
        import torch
        import torch.nn.functional as F

        h, w = frame.shape[:2]
        s = self.config.short_side / min(h, w)
        s = min(s, self.config.max_size / max(h, w))
        x = torch.from_numpy(frame).permute(2, 0, 1).float()[None] / 255.0
        x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return ((x - mean) / std)[0].to(self.config.device)

    def _forward(self, image, part: str):
        import torch

        with torch.no_grad():
            out = self.model(image[None], [self.targets[part]])
        num_kpts = PROMPTS[part][1]
        return object_candidates(self._hs[-1][0].float().cpu().numpy(), out["pred_logits"][0].float().cpu().numpy(),
                                 out["pred_keypoints"][0].float().cpu().numpy(), self.model.num_body_points,
                                 num_kpts)

    def encode_frames(self, frames: np.ndarray) -> PoseFeatures:
        frames = check_frames(frames)
        h, w = frames.shape[1:3]
        kp = np.zeros((len(frames), NUM_KEYPOINTS, 3), np.float32)
        tokens = np.zeros((len(frames), PHYS_TOKENS_PER_FRAME, PHYS_TOKEN_DIM), np.float32)
        for i, frame in enumerate(frames):
            image = self._preprocess(frame)
            candidates = {part: self._forward(image, part) for part in PROMPTS}
            tokens[i], kp[i], _ = select_object_tokens(candidates, self.config.min_score, aspect=w / h)
        return PoseFeatures(keypoints=kp, tokens=tokens, backend=self.backend)

    def close(self) -> None:
        self.model = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
