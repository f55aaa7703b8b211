"""GPU smoke tests: the pipeline and the trainer on CUDA in bf16 (tiny models). Skipped without a GPU.

Run on a GPU machine: `pytest -q -m gpu tests/test_gpu.py`. They catch tensors created on the wrong device
and dtype mix-ups that CPU tests cannot see.
"""

import numpy as np
import pytest
import torch

from _fake_features import make_feature_dataset

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_pipeline_generates_on_cuda_in_bf16(tmp_path):
    from test_inference_pipeline import portrait, speech, tiny_pipeline

    from physavatar.inference.pipeline import PhysAvatarPipeline
    from physavatar.io.video import probe_video

    tiny_pipeline().save_pretrained(tmp_path / "pipe")
    pipe = PhysAvatarPipeline.from_pretrained(tmp_path / "pipe", device="cuda", dtype=torch.bfloat16)
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.transformer.device.type == "cuda"
    wav = speech(1.5)
    result = pipe.generate(portrait(), wav, tmp_path / "gpu.mp4", num_steps=3, progress=False)
    assert probe_video(result.video).num_frames == int(np.ceil(len(wav) / 640))
    assert result.report["chunks"] == 4


def test_trainer_steps_on_cuda_with_bf16_autocast(tmp_path):
    from physavatar.training.config import load_train_config
    from physavatar.training.trainer import Trainer

    data = make_feature_dataset(tmp_path / "data", clips=2)
    cfg = load_train_config(None, {"model_preset": "tiny", "data.root": str(data), "data.num_frames": 9,
                                   "data.known_frames_prob": 0.0, "run.out_dir": str(tmp_path / "run"),
                                   "run.max_steps": 3, "run.tensorboard": False, "run.gradient_checkpointing": True})
    trainer = Trainer(cfg, progress=False)
    assert trainer.accelerator.device.type == "cuda" and trainer.accelerator.mixed_precision == "bf16"
    history = trainer.train()
    assert all(np.isfinite(h.total) for h in history)


def test_real_size_forward_matches_base_in_fp32_on_cuda():
    """Zero-initialised additions leave the real-size base output unchanged (fp32, on the GPU)."""
    import dataclasses

    from physavatar.config import vace_1_3b

    args = dataclasses.replace(vace_1_3b(), num_layers=4, vace_layers=(0, 2), phys_layer=2, context_mode="t5")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = args.build().eval()
        base = args.build_base().eval()
    model.load_state_dict(base.state_dict(), strict=False)
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(1, 16, 6, 32, 32, device="cuda", generator=g)
    ctrl = torch.randn(1, 96, 6, 32, 32, device="cuda", generator=g)
    text = torch.randn(1, 16, 4096, device="cuda", generator=g)
    with torch.no_grad():
        ours = model(x, torch.tensor([500.0], device="cuda"), text, control_hidden_states=ctrl,
                     audio_features=torch.randn(1, 17, 1280, device="cuda", generator=g), num_reference_latents=1)
        theirs = base(x, torch.tensor([500.0], device="cuda"), text, control_hidden_states=ctrl)
    torch.testing.assert_close(ours.sample, theirs.sample, atol=0, rtol=0)
