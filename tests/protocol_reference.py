"""Reference for tests/protocol.rs, written from the study's protocol facts
(/work/shared/reference/study-protocol.md; BenchmarkTransferLearning Version1): each subcommand reads JSON
arguments from argv[2] and prints JSON. Only the standard library, torch, PIL, numpy and scikit-learn."""
import csv
import json
import math
import random
import sys


def anno_subset(args):
    # dataloader.py:177-189, 244-256: random.Random(99).shuffle(indices), keep int(n * pct / 100), shuffled order
    out = {}
    for role, names in args["splits"].items():
        idx = list(range(len(names)))
        if args["percent"] < 100:
            random.Random(99).shuffle(idx)
            idx = idx[: int(len(names) * args["percent"] / 100)]
        out[role] = [names[i] for i in idx]
    return out


def chexpert_labels(args):
    # dataloader.py:155-174 (parse) and 197-209 (per fetch); Ones/Zeros exact, LSR as ranges
    rows = []
    with open(args["csv"]) as f:
        reader = csv.reader(f)
        next(reader)
        for line in reader:
            labels = []
            for cell in line[5:19]:
                if cell:
                    v = float(cell)
                    labels.append(-1 if v == -1 else int(v))
                else:
                    labels.append(args["unknown_label"])
            rows.append(labels)
    policy = args["policy"]
    out = []
    for labels in rows:
        resolved = []
        for v in labels:
            if v == -1:
                if policy == "ones":
                    resolved.append([1.0, 1.0])
                elif policy == "zeros":
                    resolved.append([0.0, 0.0])
                elif policy == "lsr-ones":
                    resolved.append([0.55, 0.85])
                else:
                    resolved.append([0.0, 0.3])
            else:
                resolved.append([float(v), float(v)])
        out.append(resolved)
    return out


def head_init(args):
    # models.py:42-44: weight N(0, 0.01), bias 0; torch.nn.Linear's default for comparison
    import torch

    torch.manual_seed(args["seed"])
    fc = torch.nn.Linear(2048, args["classes"])
    default_std = fc.weight.std().item()
    fc.weight.data.normal_(0, 0.01)
    fc.bias.data.zero_()
    return {"std": fc.weight.std().item(), "mean": fc.weight.mean().item(), "default_std": default_std}


def batch_sizes(args):
    # engine.py:42-45: DataLoader(shuffle=True for train, drop_last False)
    import torch

    loader = torch.utils.data.DataLoader(list(range(args["n"])), batch_size=args["batch_size"], shuffle=True)
    batches = [b.tolist() for b in loader]
    return {"sizes": [len(b) for b in batches], "seen": sorted(i for b in batches for i in b)}


def plateau_trace(args):
    # engine.py:50-122: Adam(lr), ReduceLROnPlateau(factor .5, patience patience//2), checkpoint on val < best,
    # early stop when the counter exceeds patience; the trace is (lr used, saved, stopped) per epoch
    import torch

    lr, patience = args["lr"], args["patience"]
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=patience // 2, mode="min")
    best, counter, trace = 1e6, 0, []
    for loss in args["losses"]:
        used = optimizer.param_groups[0]["lr"]
        scheduler.step(loss)
        saved = loss < best
        if saved:
            best, counter = loss, 0
        else:
            counter += 1
        stopped = counter > patience
        trace.append({"lr": used, "saved": saved, "stopped": stopped})
        if stopped:
            break
    return trace


def cosine_trace(args):
    # utils.py:127-135 / engine.py:210-237: the lr is set after each epoch for the next; early stop as above
    lr0, T, patience = args["lr"], args["epochs"], args["patience"]
    lr, best, counter, trace = lr0, 1e5, 0, []
    for epoch, loss in enumerate(args["losses"]):
        used = lr
        lr = lr0 * 0.5 * (1.0 + math.cos(math.pi * (epoch % T) / T))
        saved = loss < best
        if saved:
            best, counter = loss, 0
        else:
            counter += 1
        stopped = counter > patience
        trace.append({"lr": used, "saved": saved, "stopped": stopped})
        if stopped:
            break
    return trace


def auc(args):
    # utils.py:47-56 (sklearn roc_auc_score per class), engine.py:163 (trial mean), engine.py:170-176 (mean and
    # np.std over trials, ddof 0). A trial where sklearn raises is reported with its error and the mean of the
    # classes it could score (the study stops there).
    # The study's scikit-learn 0.22 raises ValueError for a class with one label value; 1.x warns
    # (UndefinedMetricWarning) and returns nan, so the warning is raised here as the error it was.
    import warnings

    import numpy as np
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import roc_auc_score

    trials, complete = [], []
    for trial in args["trials"]:
        per_class, errors = [], {}
        for c, (y, p) in enumerate(zip(trial["labels"], trial["scores"])):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", UndefinedMetricWarning)
                    per_class.append(float(roc_auc_score(np.array(y), np.array(p))))
            except (ValueError, UndefinedMetricWarning) as e:
                per_class.append(None)
                errors[c] = str(e)
        scored = [a for a in per_class if a is not None]
        trials.append({"per_class": per_class, "mean": float(np.array(scored).mean()), "errors": errors})
        if not errors:
            complete.append(np.array(scored).mean())
    return {"trials": trials, "mean": float(np.array(complete).mean()), "std": float(np.array(complete).std())}


def dice(args):
    # utils.py:137-150 ("Dice": one Dice over every pixel of every test image, both thresholded at > 0.5, 1.0 when
    # both are empty), utils.py:153-157 ("Mean Dice": the same per image, then the mean), utils.py:114-124 (the
    # soft Dice loss over the whole batch flattened, smooth 1), on the batch as float32 torch tensors.
    import numpy as np
    import torch

    def dice_score(truth, pred, empty_score=1.0):
        truth, pred = np.asarray(truth > 0.5).astype(bool), np.asarray(pred > 0.5).astype(bool)
        total = truth.sum() + pred.sum()
        if total == 0:
            return empty_score
        return 2.0 * np.logical_and(truth, pred).sum() / total

    probs, masks = np.array(args["probs"], dtype=np.float32), np.array(args["masks"], dtype=np.float32)
    per_image = [dice_score(m, p) for m, p in zip(masks, probs)]
    p, t = torch.from_numpy(probs).flatten(), torch.from_numpy(masks).flatten()
    loss = 1 - (2.0 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    return {"dice": float(dice_score(masks, probs)), "mean_dice": float(np.mean(per_image)), "loss": float(loss)}


def ten_crop(args):
    # dataloader.py:51-57: Resize((256, 256)) then TenCrop(224) on the PIL image; the crops' RGB bytes, in
    # torchvision's order, are written one after another to args["out"]
    import torchvision.transforms as T
    from PIL import Image

    t = T.Compose([T.Resize((args["resize"], args["resize"])), T.TenCrop(args["crop"])])
    crops = t(Image.open(args["png"]).convert("RGB"))
    with open(args["out"], "wb") as f:
        for crop in crops:
            f.write(crop.tobytes())
    return len(crops)


def write_pngs(args):
    from PIL import Image

    for i, path in enumerate(args["paths"]):
        Image.new("L", (40, 36), color=(i * 37) % 256).save(path)
    return len(args["paths"])


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]](json.loads(sys.argv[2]))))
