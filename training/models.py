"""The model zoo of a trained task: UNets of three sizes and the routing policy.

ZOO is the single place where widths live; train.py, export.py and smoke.py
all build models from it.
"""

from __future__ import annotations

import torch
from torch import nn

from unet_parts import DoubleConv, Down, Up


class UNet(nn.Module):
    """A fully-convolutional UNet: float32 [N, 1, H, W] in [0,1] → logits [N, C, H, W].

    H and W must be multiples of 2^(levels-1) (`multiple`).
    """

    def __init__(self, n_classes: int, widths: list[int], in_channels: int = 1):
        super().__init__()
        self.widths = list(widths)
        self.multiple = 2 ** (len(widths) - 1)
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(a, b) for a, b in zip(widths, widths[1:]))
        self.ups = nn.ModuleList(Up(b, a) for a, b in reversed(list(zip(widths, widths[1:]))))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.head(y)


ACTIONS = ["keep", "f1", "f2"]


class RoutingPolicy(nn.Module):
    """PaSeR's policy: f0's view of the image → per-tile action logits and predicted gains.

    Input [N, 2, H, W] at full resolution, H and W multiples of `tile`:
    channel 0 = f0 argmax / (C-1), channel 1 = f0 per-pixel entropy / ln C.
    The first op averages 4×4 blocks, so the network itself works at low
    resolution; two small conv stacks (stride 2 down to one cell per tile)
    read that map: the actor and the critic. Outputs, one cell per tile
    ([N, 3, H/tile, W/tile] each):
    `actions` — the actor's logits over ACTIONS (keep f0, run f1, run f2),
    trained with REINFORCE;
    `gain` — the critic's predicted IoU gain of each action over keeping f0
    (channel 0 is ~0), the value the planner divides by each action's FLOPs
    to spend a budget. Separate bodies, so each head keeps the weights that
    validated best for it.
    """

    def __init__(self, tile: int = 64, width: int = 16, critic_width: int | None = None, in_channels: int = 2):
        super().__init__()
        self.tile = tile
        self.in_channels = in_channels
        self.pool = nn.AvgPool2d(4)
        steps = (tile // 4).bit_length() - 1  # stride-2 convs after the 4× pool

        def body(width: int):
            layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            for _ in range(steps):
                layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            return nn.Sequential(*layers)

        self.actor = nn.Sequential(body(width), nn.Conv2d(width, len(ACTIONS), 1))
        cw = critic_width or width
        self.critic = nn.Sequential(body(cw), nn.Conv2d(cw, len(ACTIONS), 1))

    def forward(self, x: torch.Tensor):
        return self.forward_pooled(self.pool(x))

    def forward_pooled(self, p: torch.Tensor):
        """The same on features already averaged over 4×4 blocks (training works on those)."""
        return self.actor(p), self.critic(p)


# Per task: widths of each UNet, the tile grid and the halo local models get.
ZOO = {
    "digits": {"f0": [4, 8], "f1": [8, 16, 32], "f2": [16, 32, 64, 128], "tile": 64, "halo": 16},
    "micrograph": {"f0": [4, 8], "f1": [8, 16, 32], "f2": [16, 32, 64, 128], "tile": 64, "halo": 16},
}


def build(task: str, name: str, n_classes: int, widths: list[int] | None = None) -> nn.Module:
    """A fresh model of the zoo (`widths` overrides the zoo's, e.g. from a checkpoint)."""
    if name == "policy":
        return RoutingPolicy(ZOO[task]["tile"])
    return UNet(n_classes, widths or ZOO[task][name])


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
