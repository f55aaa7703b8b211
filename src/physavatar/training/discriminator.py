"""A small patch discriminator for the VAE's adversarial loss.

An L1 + MSE decoder draws the mean of what a latent could be, which for a small face is a blur; a patch
discriminator asks each patch of every decoded frame to look like a real one, which is how image and video VAEs
(VQGAN, Stable Diffusion's, Wan's) get their detail back. It judges frames one at a time (frames folded into the
batch): the decoder is temporally causal and a reconstruction loss already ties the frames to the truth, so the
discriminator's job here is texture, not motion. Spectral normalisation keeps it Lipschitz without batch
statistics (the batches here are a few windows), which is what makes the hinge loss stable at this size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Per-frame logits on a grid of overlapping patches: (B, 3, F, H, W) in [-1, 1] -> (B * F, 1, H/8, W/8)
    for `layers` = 3; each logit sees a patch of about 8 * 2**layers pixels."""

    def __init__(self, channels: int = 32, layers: int = 3):
        super().__init__()
        blocks, c_in = [], 3
        for i in range(layers):
            c_out = channels * 2 ** min(i, 3)
            blocks += [spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        blocks += [spectral_norm(nn.Conv2d(c_in, c_in, 3, padding=1)), nn.LeakyReLU(0.2),
                   spectral_norm(nn.Conv2d(c_in, 1, 3, padding=1))]
        self.net = nn.Sequential(*blocks)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = video.shape
        return self.net(video.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss: real patches pushed above +1, decoded ones below -1."""
    return torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def adaptive_weight(reconstruction: torch.Tensor, adversarial: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """The adversarial loss scaled to the reconstruction loss's gradient at the decoder's last layer (VQGAN's
    balance): without it the right weight moves by orders of magnitude as the discriminator learns."""
    g_rec = torch.autograd.grad(reconstruction, last_layer, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adversarial, last_layer, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, 1e4).detach()
