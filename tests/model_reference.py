"""Reference outputs for tests/model_reference.rs: torchvision's resnet50 and smp's Unet("resnet50")
with seeded random weights, saved with safetensors into the folder given as the only argument."""

import sys

import segmentation_models_pytorch as smp
import torch
import torchvision
from safetensors.torch import save_file

out = sys.argv[1]
torch.set_num_threads(1)


def state(model):
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def make_bn_nontrivial(model, calib_shape):
    """Random BN affine terms, then running stats from a few train-mode batches (cumulative average)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.momentum = None
        model.train()
        for _ in range(2):
            model(torch.randn(*calib_shape))
        for bn in bns:
            bn.momentum = 0.1
    model.eval()


# ResNet50: logits, pooled features, and a one-channel input against its RGB repeat.
torch.manual_seed(0)
resnet = torchvision.models.resnet50(num_classes=5)
make_bn_nontrivial(resnet, (2, 3, 64, 64))
x = torch.randn(2, 3, 64, 64)
gray = torch.randn(1, 1, 64, 64)
pooled = {}
resnet.avgpool.register_forward_hook(lambda m, i, o: pooled.__setitem__("f", torch.flatten(o, 1)))
with torch.no_grad():
    logits = resnet(x)
    features = pooled["f"]
    gray_logits = resnet(gray.repeat(1, 3, 1, 1))
save_file(state(resnet), f"{out}/resnet50.safetensors")
save_file({"input": x}, f"{out}/resnet50_input.safetensors")
save_file({"input": gray}, f"{out}/gray_input.safetensors")
save_file({"output": logits, "features": features, "gray_output": gray_logits}, f"{out}/resnet50_expected.safetensors")

# U-Net(ResNet50) at a square and a non-square size.
torch.manual_seed(1)
unet = smp.Unet("resnet50", encoder_weights=None, classes=2)
make_bn_nontrivial(unet, (1, 3, 64, 64))
save_file(state(unet), f"{out}/unet.safetensors")
for name, (h, w) in {"224": (224, 224), "256x320": (256, 320)}.items():
    xu = torch.randn(1, 3, h, w)
    with torch.no_grad():
        yu = unet(xu)
    save_file({"input": xu}, f"{out}/unet_{name}_input.safetensors")
    save_file({"output": yu}, f"{out}/unet_{name}_expected.safetensors")

# One training step: train-mode BN, BCE-with-logits, Adam lr 1e-3.
# It starts from resnet50.safetensors (saved above).
torch.manual_seed(2)
net = resnet
xt = torch.randn(2, 3, 64, 64)
yt = torch.randint(0, 2, (2, 5)).float()
net.train()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt), yt)
opt.zero_grad()
loss.backward()
opt.step()
save_file(state(net), f"{out}/train_after.safetensors")
save_file({"input": xt, "target": yt, "loss": loss.detach().reshape(1)}, f"{out}/train_batch.safetensors")
