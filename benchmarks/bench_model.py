"""Model benchmark: parameter counts and FLOPs of the real 1.3B configuration, the cost of PhysAvatar's
additions relative to the base Wan2.1-VACE forward, and (with --device cuda) real-size bf16 timings.

    python benchmarks/bench_model.py                    # CPU: counts, FLOPs, reduced-size time ratio
    python benchmarks/bench_model.py --device cuda      # + real-size bf16 forward / train step / chunk time

Prints a table and, with --json PATH, writes the figures. Figures recorded in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics

from _timing import median_of

import torch
from diffusers import AutoencoderKLWan

from physavatar.config import LoraArgs, tiny, vace_1_3b
from physavatar.models.flops import example_inputs, forward_flops
from physavatar.models.lora import add_lora, parameter_summary

def base_model(args):
    return args.build_base()


def base_inputs(inputs: dict, args) -> dict:
    """The same call for the base model: T5-width text instead of audio and planner inputs."""
    x = inputs["hidden_states"]
    return dict(
        hidden_states=x,
        timestep=inputs["timestep"],
        encoder_hidden_states=torch.randn(x.shape[0], 512, args.text_dim, device=x.device, dtype=x.dtype),
        control_hidden_states=inputs["control_hidden_states"],
    )


def counts_and_flops(figures: dict) -> None:
    args = vace_1_3b()
    with torch.device("meta"):
        model = args.build()
        inputs = example_inputs(args, 512, 512, 81)
        flops = forward_flops(model, inputs)
        base = base_model(args)
        base_flops = forward_flops(base, base_inputs(inputs, args))
        add_lora(model, LoraArgs())
    s = parameter_summary(model)
    figures.update(
        params_base_M=s.base / 1e6, params_new_M=s.new / 1e6, params_lora_M=s.lora / 1e6,
        params_trainable_M=s.trainable / 1e6,
        tflop_forward_512x512x81=flops / 1e12, tflop_base_forward_512x512x81=base_flops / 1e12,
        flop_ratio=flops / base_flops,
    )


@torch.no_grad()
def cpu_time_ratio(figures: dict, repeats: int) -> None:
    """Real width (1536, 12 heads, FFN 8960), 4 main + 2 VACE blocks, 256x256x17 frames: the ratio of forward
    times with and without PhysAvatar's additions, measured alternately in one process."""
    args = dataclasses.replace(vace_1_3b(), num_layers=4, vace_layers=(0, 2), phys_layer=2)
    torch.manual_seed(0)
    model = args.build().eval()
    base = base_model(args).eval()
    model.load_state_dict(base.state_dict(), strict=False)
    inputs = example_inputs(args, 256, 256, 17, device="cpu")
    b_inputs = base_inputs(inputs, args)
    model(**inputs), base(**b_inputs)  # warm-up
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(median_of(lambda: model(**inputs, return_phys=True), 1))
        theirs.append(median_of(lambda: base(**b_inputs), 1))
    figures.update(
        cpu_reduced_forward_s=statistics.median(ours),
        cpu_reduced_base_forward_s=statistics.median(theirs),
        cpu_reduced_time_ratio=statistics.median(ours) / statistics.median(theirs),
        cpu_threads=torch.get_num_threads(),
    )


def gpu_real_size(figures: dict, repeats: int, args=None, size=(512, 512, 81), device="cuda") -> None:
    """Real-size bf16 timings on a GPU. (`args`, `size`, `device` exist so the code path can be smoke-tested
    on the CPU with a tiny config: `--smoke`.)"""
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    dtype = torch.bfloat16 if on_gpu else torch.float32
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    memory = (lambda: torch.cuda.max_memory_allocated() / 2**30) if on_gpu else (lambda: float("nan"))
    reset_memory = torch.cuda.reset_peak_memory_stats if on_gpu else (lambda: None)
    args = args or vace_1_3b()
    height, width, frames = size
    torch.manual_seed(0)
    with torch.device(device):
        model = args.build().to(dtype).eval()
        base = base_model(args).to(dtype).eval()
    inputs = example_inputs(args, height, width, frames, device=device, dtype=dtype)
    b_inputs = base_inputs(inputs, args)
    tflop = figures["tflop_forward_512x512x81"]
    with torch.no_grad():
        for _ in range(2):
            model(**inputs), base(**b_inputs)
        reset_memory()
        t_ours = median_of(lambda: model(**inputs, return_phys=True), repeats, sync)
        mem_forward = memory()
        t_base = median_of(lambda: base(**b_inputs), repeats, sync)
        # one denoising step of a chunk: conditional + audio-unconditional + context-unconditional passes
        batch3 = example_inputs(args, height, width, frames, device=device, dtype=dtype, batch=3)
        model(**batch3)
        t_step = median_of(lambda: model(**batch3), max(2, repeats // 2), sync)
    figures.update(
        gpu=torch.cuda.get_device_name() if on_gpu else "cpu (smoke test)",
        gpu_forward_s=t_ours, gpu_base_forward_s=t_base, gpu_time_ratio=t_ours / t_base,
        gpu_forward_tflops=tflop / t_ours, gpu_forward_peak_GiB=mem_forward,
        gpu_cfg_step_s=t_step, gpu_chunk_50_steps_s=50 * t_step,
        chunk_physical_limit_s=3 * 50 * tflop / 570.0,  # at 570 TFLOP/s sustained bf16 (issue 7's estimate)
    )
    del base

    # 2. training step: LoRA r=128 + full new modules, gradient checkpointing, bf16
    add_lora(model, LoraArgs())
    model.train()
    model.enable_gradient_checkpointing()
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=on_gpu):
            out = model(**inputs, return_phys=True)
            loss = out.sample.float().square().mean() + 10 * out.phys_tokens.float().square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    reset_memory()
    t_train = median_of(step, max(2, repeats // 2), sync)
    figures.update(gpu_train_step_s=t_train, gpu_train_peak_GiB=memory())
    del model, optimizer
    if on_gpu:
        torch.cuda.empty_cache()

    # 3. VAE decode of one chunk (21 latent frames at 64x64 -> 81 frames at 512x512)
    with torch.device(device):
        vae = (AutoencoderKLWan() if on_gpu else AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2],
               num_res_blocks=1)).to(dtype).eval()
    latents = torch.randn(1, 16, frames // 4 + 1, height // 8, width // 8, device=device, dtype=dtype)
    with torch.no_grad():
        vae.decode(latents)
        figures["gpu_vae_decode_chunk_s"] = median_of(lambda: vae.decode(latents), 2, sync)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda adds real-size bf16 timings")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per figure (median reported)")
    parser.add_argument("--skip-cpu-ratio", action="store_true", help="skip the reduced-size CPU timing")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="run the GPU code path on the CPU with the tiny config")
    args = parser.parse_args()

    figures: dict = {"torch": torch.__version__}
    counts_and_flops(figures)
    if not args.skip_cpu_ratio:
        cpu_time_ratio(figures, args.repeats)
    if args.device == "cuda":
        gpu_real_size(figures, args.repeats)
    elif args.smoke:
        gpu_real_size(figures, 1, args=tiny(), size=(64, 64, 9), device="cpu")
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:,.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
