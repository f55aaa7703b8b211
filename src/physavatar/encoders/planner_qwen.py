"""The paper's planner (§3.4): the Qwen2.5-Omni Thinker (3B or 7B) from a local folder.

Inputs: the reference image and the audio go in as real image / audio inputs, the text is Figure S3's
prompt (+ the edit, appended at the end). Greedy decoding with a token cap writes the plan. Then one more
forward pass over prompt + plan gives e_con = the Thinker's final (post-norm) hidden states at the plan
tokens, and e_tok = the input embeddings of the same tokens (eq. 5 adds them).

The folder may hold the full Qwen2.5-Omni checkpoint (model_type "qwen2_5_omni": thinker + talker +
token2wav; only the `thinker.` weights are read) or a Thinker alone ("qwen2_5_omni_thinker"). The inputs
are prepared here with the folder's tokenizer, image processor and feature extractor, mirroring
Qwen2_5OmniProcessor (whose video processor needs torchvision, which these machines cannot import).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from physavatar.constants import SAMPLE_RATE
from physavatar.encoders.backend import ModelFolderError, read_json, require_model_folder
from physavatar.encoders.planner import Planner, PlannerConfig, PlanOutput

# The default system prompt of Qwen2.5-Omni (its model card); the chat layout is the model's ChatML.
SYSTEM_PROMPT = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
                 "auditory and visual inputs, as well as generating text and speech.")
MAX_AUDIO_S = 30.0  # the Thinker's audio front end takes one 30-s Whisper window per input


def _special(tokenizer, attr: str, default: str) -> str:
    return getattr(tokenizer, attr, None) or default


class QwenOmniPlanner(Planner):
    def __init__(self, config: PlannerConfig):
        import torch
        from transformers import AutoTokenizer, WhisperFeatureExtractor
        from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import (
            Qwen2_5OmniThinkerForConditionalGeneration)

        folder = require_model_folder(config.path, ["config.json"], "Qwen2.5-Omni")
        self.config, self.folder = config, folder
        dtype = config.dtype
        if dtype == "auto":
            dtype = "bfloat16" if config.device.startswith("cuda") else "float32"
        self.dtype = getattr(torch, dtype)
        thinker_config, key_mapping = _thinker_config(folder)
        model, info = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
            folder, config=thinker_config, dtype=self.dtype, key_mapping=key_mapping, output_loading_info=True)
        if info["missing_keys"]:
            missing = sorted(info["missing_keys"])
            raise ModelFolderError(f"{folder}: the checkpoint lacks {len(missing)} Thinker weights "
                                   f"(e.g. {missing[:3]}); give a complete Qwen2.5-Omni folder")
        self.model = model.to(config.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.image_processor = _image_processor(folder, config.max_image_pixels)
        self.feature_extractor = WhisperFeatureExtractor.from_pretrained(folder)
        self.merge = thinker_config.vision_config.spatial_merge_size
        self.backend = f"qwen2.5-omni-thinker:{folder.name}"
        self.model_id = f"{self.backend}:{_folder_fingerprint(folder)}:cap={config.max_new_tokens}:" \
                        f"px={config.max_image_pixels}:{dtype}"
        self._torch = torch

    def build_inputs(self, image, audio: np.ndarray, prompt: str) -> dict:
        """Token ids with expanded <|IMAGE|> / <|AUDIO|> placeholders + pixel and mel inputs (batch of 1)."""
        from transformers.models.qwen2_5_omni.processing_qwen2_5_omni import _get_feat_extract_output_lengths

        tok = self.tokenizer
        pix = self.image_processor(images=[image], return_tensors="pt")
        n_image = int(pix["image_grid_thw"][0].prod()) // self.merge ** 2
        mel = self.feature_extractor(audio[: int(MAX_AUDIO_S * SAMPLE_RATE)], sampling_rate=SAMPLE_RATE,
                                     return_attention_mask=True, padding="max_length", return_tensors="pt")
        feature_mask = mel.pop("attention_mask")
        n_audio = int(_get_feat_extract_output_lengths(feature_mask.sum(-1))[0])
        image_part = (_special(tok, "vision_bos_token", "<|vision_bos|>")
                      + _special(tok, "image_token", "<|IMAGE|>") * n_image
                      + _special(tok, "vision_eos_token", "<|vision_eos|>"))
        audio_part = (_special(tok, "audio_bos_token", "<|audio_bos|>")
                      + _special(tok, "audio_token", "<|AUDIO|>") * n_audio
                      + _special(tok, "audio_eos_token", "<|audio_eos|>"))
        user = image_part + audio_part + prompt  # the official template's order: image, audio, text
        text = (f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
                "<|im_start|>assistant\n")
        enc = tok(text, return_tensors="pt")
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                  "pixel_values": pix["pixel_values"].to(self.dtype), "image_grid_thw": pix["image_grid_thw"],
                  "input_features": mel["input_features"].to(self.dtype), "feature_attention_mask": feature_mask}
        return {k: v.to(self.config.device) for k, v in inputs.items()}

    def _stop_ids(self) -> list[int]:
        ids = {self.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        unk = self.tokenizer.unk_token_id
        return sorted(i for i in ids if i is not None and i != unk)

    def _plan(self, image, audio, prompt, edit) -> PlanOutput:
        torch = self._torch
        # 1. inputs; 2. greedy plan; 3. one forward over prompt + plan for e_con; 4. input embeddings for e_tok
        inputs = self.build_inputs(image, audio, prompt)
        stop = self._stop_ids()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else stop[0]
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                      num_beams=1, eos_token_id=stop, pad_token_id=pad)
        prompt_len = inputs["input_ids"].shape[1]
        generated = out[0, prompt_len:].tolist()
        while generated and generated[-1] in stop:  # the stop token is not part of the plan
            generated.pop()
        if not generated:
            raise RuntimeError(f"{self.folder}: the Thinker stopped before writing any plan; check the model folder")
        plan_ids = torch.tensor([generated], device=self.config.device)
        full = dict(inputs, input_ids=torch.cat([inputs["input_ids"], plan_ids], 1),
                    attention_mask=torch.ones(1, prompt_len + len(generated), dtype=inputs["attention_mask"].dtype,
                                              device=self.config.device))
        with torch.inference_mode():
            hidden = self.model.model(**full)[0][0, prompt_len:]  # (L, C) post-norm last hidden states
            embeds = self.model.get_input_embeddings()(plan_ids)[0]  # (L, C)
        text = self.tokenizer.decode(generated, skip_special_tokens=True).strip()
        info = {"heuristic": False, "num_plan_tokens": len(generated),
                "hit_token_cap": (len(out[0]) - prompt_len >= self.config.max_new_tokens
                                  and out[0, -1].item() not in stop),
                "audio_truncated_to_s": MAX_AUDIO_S if len(audio) > MAX_AUDIO_S * SAMPLE_RATE else None}
        return PlanOutput(text, hidden.float().cpu().numpy(), embeds.float().cpu().numpy(), self.backend, prompt,
                          edit, self.tokenizer.convert_ids_to_tokens(generated), info)


def _thinker_config(folder: Path):
    """(Thinker config, key mapping) for a full Omni folder or a Thinker-only folder."""
    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import (Qwen2_5OmniConfig,
                                                                             Qwen2_5OmniThinkerConfig)

    model_type = read_json(folder / "config.json").get("model_type")
    if model_type == "qwen2_5_omni":
        return Qwen2_5OmniConfig.from_pretrained(folder).thinker_config, {r"^thinker\.": ""}
    if model_type == "qwen2_5_omni_thinker":
        return Qwen2_5OmniThinkerConfig.from_pretrained(folder), None
    raise ModelFolderError(f"{folder}: config.json has model_type {model_type!r}; give a Qwen2.5-Omni folder "
                           "(model_type 'qwen2_5_omni' or 'qwen2_5_omni_thinker')")


def _image_processor(folder: Path, max_pixels: int):
    """Qwen2-VL image processor from the folder's preprocessor_config.json, capped at `max_pixels`."""
    try:  # the PIL implementation needs no torchvision
        from transformers import Qwen2VLImageProcessorPil as ImageProcessor
    except ImportError:
        from transformers import Qwen2VLImageProcessor as ImageProcessor
    if not (folder / "preprocessor_config.json").is_file():
        raise ModelFolderError(f"{folder}: no preprocessor_config.json (image processor + audio feature extractor "
                               "settings); give the complete Qwen2.5-Omni folder")
    proc = ImageProcessor.from_pretrained(folder)
    size = dict(proc.size)  # {"shortest_edge": min pixels, "longest_edge": max pixels}
    size["longest_edge"] = min(int(size.get("longest_edge") or max_pixels), max_pixels)
    size["shortest_edge"] = min(int(size.get("shortest_edge") or 0), size["longest_edge"])
    proc.size = size
    return proc


def _folder_fingerprint(folder: Path) -> str:
    """Hash of config.json and the weight files' names and sizes: a changed checkpoint changes cache keys."""
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        h.update(f"{f.name}:{os.path.getsize(f)}".encode())
    return h.hexdigest()[:12]
