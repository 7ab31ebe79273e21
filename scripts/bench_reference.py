"""The study's way of doing each benchmarked job in Python (torch eager, PIL + torchvision + DataLoader,
torch.load + safetensors), for scripts/bench. Prints one JSON object like `medxfer bench`.

usage: bench_reference.py train-step BATCH SIZE WARMUP STEPS THREADS [DEVICE PRECISION MEMORY_FORMAT [GRAPH]]
       bench_reference.py optim-step WARMUP STEPS THREADS IMPL [DEVICE]   (IMPL: fused | foreach | single)
       bench_reference.py loader LIST IMAGES MODE SIZE BATCH WORKERS
       bench_reference.py make-images DIR COUNT SIDE
       bench_reference.py make-checkpoint PATH
       bench_reference.py convert IN OUT
"""
import json, os, sys, time


def rate(what, images, seconds):
    print(json.dumps({"what": what, "images": images, "seconds": seconds, "images_per_s": images / seconds}))


def train_step(batch, size, warmup, steps, threads, device="cpu", precision="fp32", memory_format="nchw",
               graph="eager"):
    import contextlib, torch, torchvision
    if threads:
        torch.set_num_threads(threads)
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = device.startswith("cuda")
    torch.manual_seed(0)
    layout = torch.channels_last if memory_format == "nhwc" else torch.contiguous_format
    net = torchvision.models.resnet50(num_classes=14).to(device, memory_format=layout)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=layout)
    y = torch.rand(batch, 14, device=device).round()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    autocast = lambda: (torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if precision == "bf16"
                        else contextlib.nullcontext())

    def step():
        opt.zero_grad()
        with autocast():
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        opt.step()
        return loss.item()

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    how = "eager"
    if graph == "graph" and device.startswith("cuda"):
        # PyTorch's whole-network capture (docs, "CUDA Graphs"): capturable fused Adam, warm-up on a side stream
        opt = torch.optim.Adam(net.parameters(), lr=torch.tensor(2e-4, device=device), fused=True, capturable=True)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            with autocast():
                static_loss = loss_fn(net(x).float(), y)
            static_loss.backward()
            opt.step()

        def step():
            g.replay()
            return static_loss.item()
        how = "CUDA graph"
    for _ in range(warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    rate(f"torch {how} resnet50 train step, batch {batch}, {size}px, {device}, {precision} {memory_format}",
         batch * steps, time.perf_counter() - t)


def optim_step(warmup, steps, threads, impl, device="cpu"):
    """torch.optim.Adam over ResNet50's parameters (14 classes) with fixed random gradients."""
    import torch, torchvision
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torchvision.models.resnet50(num_classes=14).to(device)
    params = list(net.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "single": {"foreach": False}}[impl]
    opt = torch.optim.Adam(params, lr=2e-4, **flags)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        opt.step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        opt.step()
    sync()
    seconds = time.perf_counter() - t
    print(json.dumps({"what": f"torch.optim.Adam({impl}) over resnet50's {len(params)} parameters, {device}",
                      "steps": steps, "seconds": seconds, "steps_per_s": steps / seconds}))


class ListDataset:
    def __init__(self, list_path, images, transform):
        from PIL import Image
        self.Image = Image
        with open(list_path) as f:
            rows = [line.split() for line in f if line.strip()]
        self.items = [(os.path.join(images, r[0]), [float(v) for v in r[1:]]) for r in rows]
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        import torch
        path, labels = self.items[i]
        image = self.Image.open(path).convert("RGB")
        return self.transform(image), torch.tensor(labels)


def loader(list_path, images, mode, size, batch, workers):
    import torch
    from torchvision import transforms as T
    norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    if mode == "train":
        tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.RandomRotation(7), T.ToTensor(), norm])
    else:
        tf = T.Compose([T.Resize(size * 8 // 7), T.CenterCrop(size), T.ToTensor(), norm])
    torch.set_num_threads(1)
    data = ListDataset(list_path, images, tf)
    dl = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=False, num_workers=workers)
    t = time.perf_counter()
    seen = sum(x.shape[0] for x, _ in dl)
    rate(f"PIL + torchvision + DataLoader {mode}, {size}px, {workers} workers", seen, time.perf_counter() - t)


def make_images(out, count, side):
    import numpy as np
    from PIL import Image
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    lines = []
    for i in range(count):
        a, b, c = rng.uniform(2, 9, 3)
        img = 120 + 60 * np.sin(a * xx + b * yy) * np.cos(c * yy) + rng.normal(0, 6, (side, side))
        name = f"{i:05d}.png"
        Image.fromarray(img.clip(0, 255).astype(np.uint8), "L").save(os.path.join(out, name))
        lines.append(name + " " + " ".join(str(int(v)) for v in rng.integers(0, 2, 14)))
    with open(os.path.join(out, "list.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def make_checkpoint(path):
    import torch, torchvision
    torch.manual_seed(0)
    sd = torchvision.models.resnet50().state_dict()
    sd = {"module.encoder_q." + k: v for k, v in sd.items()}
    torch.save({"state_dict": sd, "epoch": 200, "arch": "resnet50"}, path)


def convert(src, dst):
    import torch
    from safetensors.torch import save_file
    t = time.perf_counter()
    sd = torch.load(src, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "module.encoder_q."
    out = {k[len(prefix):]: v.contiguous() for k, v in sd.items()
           if k.startswith(prefix) and not k[len(prefix):].startswith("fc.") and not k.endswith("num_batches_tracked")}
    save_file(out, dst)
    print(json.dumps({"what": "torch.load + safetensors save_file", "seconds": time.perf_counter() - t, "tensors": len(out)}))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "train-step":
        train_step(*map(int, args[:5]), *args[5:])
    elif cmd == "optim-step":
        optim_step(*map(int, args[:3]), *args[3:])
    elif cmd == "loader":
        loader(args[0], args[1], args[2], *map(int, args[3:]))
    elif cmd == "make-images":
        make_images(args[0], int(args[1]), int(args[2]))
    elif cmd == "make-checkpoint":
        make_checkpoint(args[0])
    elif cmd == "convert":
        convert(*args)
    else:
        sys.exit(f"unknown command {cmd}")
