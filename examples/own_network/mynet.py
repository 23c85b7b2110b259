"""A search space of your own: a small CNN whose blocks choose their op and their skip inputs.

    enas-search space=custom space.target=mynet:MyNet data=image_folder data.path=my_images trainer=cnn
"""

from torch import nn
import torch.nn.functional as F

from enas.nn import InputChoice, LayerChoice, ValueChoice


def conv(width, k):                                   # conv-BN-ReLU, same size
    return nn.Sequential(nn.Conv2d(width, width, k, padding=k // 2, bias=False), nn.BatchNorm2d(width), nn.ReLU())


class Block(nn.Module):
    def __init__(self, i, width):
        super().__init__()
        self.op = LayerChoice({"conv3": conv(width, 3), "conv5": conv(width, 5),
                               "max3": nn.MaxPool2d(3, 1, 1), "identity": nn.Identity()})
        self.skip = InputChoice(i + 1, n_chosen=None)  # any of the earlier outputs, summed


class MyNet(nn.Module):
    def __init__(self, num_classes, in_channels=3, num_blocks=4, width=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.blocks = nn.ModuleList(Block(i, width) for i in range(num_blocks))
        self.dropout = ValueChoice([0.0, 0.2, 0.4])
        self.head = nn.Linear(width, num_classes)

    def forward(self, images):                        # (B, C, H, W) -> logits (B, num_classes)
        outputs = [self.stem(images)]
        for block in self.blocks:
            h, skip = block.op(outputs[-1]), block.skip(outputs)
            outputs.append(h if skip is None else h + skip)
        features = outputs[-1].mean((2, 3))           # (B, width)
        return self.head(F.dropout(features, self.dropout.value, self.training))
