"""The Qwen2.5-Omni Thinker planner, run on a tiny random Thinker written in the real folder formats
(Thinker-only and the full Omni checkpoint with `thinker.` prefixes), plus the UMT5 (T5 ablation) path."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from physavatar.encoders.backend import ModelFolderError
from physavatar.encoders.planner import PLAN_PROMPT, PlannerConfig, PlanOutput, check_plans, load_planner

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>",
            "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>"]


def byte_tokenizer(model_cls=None, **kwargs):
    """A byte-level tokenizer (256 byte tokens + Qwen's special tokens), saved like a real one."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {ch: i for i, ch in enumerate(sorted(ByteLevel.alphabet()))}
    for s in SPECIALS:
        vocab[s] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(s, special=True) for s in SPECIALS])
    if model_cls is None:
        from transformers import Qwen2TokenizerFast as model_cls
    return model_cls(tokenizer_object=tk, **kwargs), vocab


def write_tiny_thinker(folder, full_omni: bool):
    from safetensors.torch import load_file, save_file
    from transformers import Qwen2VLImageProcessorPil, WhisperFeatureExtractor
    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import Qwen2_5OmniThinkerConfig
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerForConditionalGeneration

    tok, vocab = byte_tokenizer(eos_token="<|im_end|>", pad_token="<|endoftext|>", extra_special_tokens={
        "image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
        "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
        "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"})
    config = Qwen2_5OmniThinkerConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32,
                           fullatt_block_indexes=[0], window_size=112),
        audio_config=dict(num_mel_bins=128, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                          d_model=16, output_dim=32),
        audio_token_index=vocab["<|AUDIO|>"], image_token_index=vocab["<|IMAGE|>"],
        video_token_index=vocab["<|VIDEO|>"], audio_start_token_id=vocab["<|audio_bos|>"],
        audio_end_token_id=vocab["<|audio_eos|>"], vision_start_token_id=vocab["<|vision_bos|>"],
        vision_end_token_id=vocab["<|vision_eos|>"], bos_token_id=vocab["<|im_start|>"],
        eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"])
    torch.manual_seed(0)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    # Qwen2.5-Omni keeps image-processor and feature-extractor settings in one preprocessor_config.json.
    merged = {**Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16).to_dict(),
              **WhisperFeatureExtractor(feature_size=128).to_dict()}
    (folder / "preprocessor_config.json").write_text(json.dumps(merged, default=str))
    if full_omni:  # the released checkpoint: everything under thinker./talker./token2wav.
        state = load_file(str(folder / "model.safetensors"))
        state = {f"thinker.{k}": v for k, v in state.items()}
        state["talker.codec_head.weight"] = torch.zeros(2, 2)  # present in real folders, never loaded
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_5_omni", "thinker_config": cfg,
                                                        "enable_audio_output": False}))
    return model


@pytest.fixture(scope="module")
def thinker_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen-thinker-tiny")
    model = write_tiny_thinker(folder, full_omni=False)
    return folder, model


@pytest.fixture
def image_audio():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (96, 80, 3), dtype=np.uint8))
    audio = (0.1 * np.sin(2 * np.pi * 180 * np.arange(16000 * 2) / 16000)).astype(np.float32)
    return image, audio


def test_qwen_plan_embeddings_are_hidden_states_and_input_embeddings(thinker_folder, image_audio):
    folder, model = thinker_folder
    planner = load_planner(PlannerConfig(backend="qwen-omni", path=str(folder), max_new_tokens=12, use_cache=False))
    image, audio = image_audio
    out = planner.plan(image, audio, use_cache=False)
    L = len(out.tokens)
    assert 1 <= L <= 12 and out.e_con.shape == out.e_tok.shape == (L, 32)
    assert out.backend.startswith("qwen2.5-omni-thinker:") and out.prompt == PLAN_PROMPT
    # Known answer: rebuild the greedy sequence and check both embeddings against the model directly.
    inputs = planner.build_inputs(image, audio, PLAN_PROMPT)
    n_img = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_img == int(inputs["image_grid_thw"][0].prod()) // 4
    assert int((inputs["input_ids"] == model.config.audio_token_id).sum()) > 0
    plan_ids = torch.tensor([planner.tokenizer.convert_tokens_to_ids(out.tokens)])
    with torch.no_grad():
        gen = model.generate(**inputs, max_new_tokens=12, do_sample=False)
        assert gen[0, inputs["input_ids"].shape[1]:][:L].tolist() == plan_ids[0].tolist()  # greedy, reproducible
        full = dict(inputs, input_ids=torch.cat([inputs["input_ids"], plan_ids], 1),
                    attention_mask=torch.ones(1, inputs["input_ids"].shape[1] + L, dtype=torch.long))
        logits = model(**full).logits[0, -L - 1:-1]
        # e_con are the final states: the LM head applied to them predicts each next plan token greedily.
        np.testing.assert_allclose(model.lm_head(torch.from_numpy(out.e_con)).numpy(),
                                   model(**full).logits[0, -L:].numpy(), atol=1e-4)
        assert logits.argmax(-1).tolist() == plan_ids[0].tolist()
        np.testing.assert_allclose(out.e_tok, model.get_input_embeddings()(plan_ids)[0].numpy(), atol=1e-6)


def test_edit_is_appended_and_changes_the_cache_key(thinker_folder, image_audio, tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSAVATAR_CACHE", str(tmp_path))
    folder, _ = thinker_folder
    planner = load_planner(PlannerConfig(backend="qwen-omni", path=str(folder), max_new_tokens=6))
    image, audio = image_audio
    plain = planner.plan(image, audio)
    edited = planner.plan(image, audio, edit="  The person is   angry. ")
    assert edited.prompt == PLAN_PROMPT + "\nThe person is angry." and edited.edit == "The person is angry."
    assert len(list((tmp_path / "plans").iterdir())) == 2
    again = planner.plan(image, audio)  # served from the cache, identical
    assert again.text == plain.text and np.array_equal(again.e_con, plain.e_con)
    saved = PlanOutput.load(tmp_path / "plans" / sorted(p.name for p in (tmp_path / "plans").iterdir())[0])
    assert saved.backend == plain.backend


def test_full_omni_checkpoint_loads_only_the_thinker(tmp_path, image_audio):
    model = write_tiny_thinker(tmp_path, full_omni=True)
    planner = load_planner(PlannerConfig(backend="qwen-omni", path=str(tmp_path), max_new_tokens=4, use_cache=False))
    for (name, p), (_, q) in zip(sorted(planner.model.state_dict().items()), sorted(model.state_dict().items())):
        assert torch.equal(p, q), name
    out = planner.plan(*image_audio, use_cache=False)
    assert out.e_con.shape[1] == 32


def test_qwen_folder_errors(tmp_path):
    with pytest.raises(ModelFolderError, match="no such Qwen2.5-Omni folder"):
        load_planner(PlannerConfig(backend="qwen-omni", path=str(tmp_path / "nope")))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelFolderError, match="model_type 'bert'"):
        load_planner(PlannerConfig(backend="qwen-omni", path=str(tmp_path)))
    with pytest.raises(ValueError, match="needs path"):
        load_planner(PlannerConfig(backend="qwen-omni"))


@pytest.fixture(scope="module")
def tiny_umt5(tmp_path_factory):
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    folder = tmp_path_factory.mktemp("umt5-tiny")
    tok, vocab = byte_tokenizer(PreTrainedTokenizerFast, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    UMT5EncoderModel(UMT5Config(vocab_size=len(vocab), d_model=24, d_kv=8, d_ff=48, num_layers=2, num_heads=3,
                                pad_token_id=vocab["<|endoftext|>"])).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_t5_ablation_reencodes_the_plan_text(thinker_folder, tiny_umt5, image_audio):
    from physavatar.encoders.planner_text import TextTokenEncoder

    folder, _ = thinker_folder
    planner = load_planner(PlannerConfig(backend="qwen-omni", path=str(folder), max_new_tokens=8,
                                         text_encoder="t5", t5_path=str(tiny_umt5)))
    out = planner.plan(*image_audio, use_cache=False)
    assert out.e_con.shape[1] == 24 and out.backend.endswith(f"|t5-{tiny_umt5.name}")
    e_con, e_tok, _ = TextTokenEncoder(tiny_umt5).encode(out.text)
    np.testing.assert_allclose(out.e_con, e_con, atol=1e-6)
    native = load_planner(PlannerConfig(backend="qwen-omni", path=str(folder), max_new_tokens=8))
    from physavatar.encoders.backend import BackendMismatchError

    with pytest.raises(BackendMismatchError):
        check_plans([out, native.plan(*image_audio, use_cache=False)])


def test_image_token_budget_is_capped(thinker_folder):
    folder, model = thinker_folder
    image = Image.fromarray(np.full((300, 300, 3), 128, np.uint8))
    audio = np.zeros(16000, np.float32)
    for cap, most in ((28 * 28 * 16, 16), (28 * 28 * 4, 4)):
        planner = load_planner(PlannerConfig(backend="qwen-omni", path=str(folder), max_image_pixels=cap))
        ids = planner.build_inputs(image, audio, PLAN_PROMPT)["input_ids"]
        n = int((ids == model.config.image_token_id).sum())
        assert 1 <= n <= most
