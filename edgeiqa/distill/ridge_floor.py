"""The frozen-feature floor: ImageNet features + ridge regression, on an experiment's own split.

A trained model that does not clearly beat this has learned nothing beyond ImageNet. A frozen
backbone (no fine-tuning) sees each photo at native resolution; every stage's feature map is pooled by
mean and standard deviation (the second carries distortion statistics), the vector is standardised and
a ridge regression, its strength chosen on the validation split, maps it to MOS. Measured on LIVE-C with
EfficientNet-Lite0: SRCC about 0.81 on held-out photos.

``edgeiqa baseline --config X.yaml`` writes ``<out>/baseline_ridge.json`` in the shape of a summary.json
model entry (metrics, a bootstrap interval and per-image scores on the same test images as the trained
models), so reports put it beside the teacher and the students.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.distill.config import TrainingConfig
from edgeiqa.fileio import atomic_write_text
from edgeiqa.metrics import bootstrap_ci, iqa_metrics, srcc
from edgeiqa.progress import progress_bar

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))
# Native resolution, but a huge photo is reduced to this long side first: the floor must stay cheap.
MAX_SIDE = 1024


def pooled_features(paths: Sequence[Path], backbone: str = DEFAULT_BACKBONE, progress: bool = True) -> np.ndarray:
    """[N, D] mean+std pooled features of every stage of a frozen ImageNet backbone, one image at a time."""
    import torch

    from edgeiqa.models.pretrained import backbone_normalisation, create_backbone
    from edgeiqa.runtime.contract import PreprocessContract
    from edgeiqa.runtime.preprocess import decode_image, normalise

    mean, std = backbone_normalisation(backbone)
    contract = PreprocessContract(mean=mean, std=std, fragments=None)
    model = create_backbone(backbone, pretrained=True).eval()
    rows = []
    with torch.inference_mode():
        for path in progress_bar(len(paths), "frozen features", iterable=paths, enabled=progress):
            img = decode_image(path, contract)
            if max(img.size) > MAX_SIDE:
                scale = MAX_SIDE / max(img.size)
                img = img.resize((round(img.width * scale), round(img.height * scale)), reducing_gap=3.0)
            x = torch.from_numpy(normalise(np.asarray(img), contract))[None]
            maps = model(x)
            rows.append(torch.cat([torch.cat([m.mean((2, 3)), m.std((2, 3))], 1) for m in maps], 1)[0].numpy())
    return np.stack(rows).astype(np.float64)


def fit_ridge(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray) -> tuple[Any, float]:
    """A standardise + ridge pipeline; alpha is the one with the best validation SRCC."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best: tuple[float, float, Any] = (-np.inf, ALPHAS[0], None)
    for alpha in ALPHAS:
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(train_x, train_y)
        score = srcc(model.predict(val_x), val_y)
        if best[2] is None or score > best[0]:
            best = (score, alpha, model)
    return best[2], best[1]


def ridge_floor(cfg: TrainingConfig, backbone: str = DEFAULT_BACKBONE, progress: bool = True) -> dict[str, Any]:
    """The floor on ``cfg``'s own split (its data, seed and output folder); writes the JSON."""
    from edgeiqa.distill.runs import load_splits

    started = time.perf_counter()
    splits = load_splits(cfg.data)
    test = splits.test or splits.val
    parts = {"train": splits.train, "val": splits.val, "test": test}
    records = [r for part in parts.values() for r in part]
    features = pooled_features([r.path for r in records], backbone, progress)
    bounds = np.cumsum([0] + [len(p) for p in parts.values()])
    x = {name: features[bounds[i] : bounds[i + 1]] for i, name in enumerate(parts)}
    y = {name: np.array([r.mos for r in part], dtype=np.float64) for name, part in parts.items()}
    model, alpha = fit_ridge(x["train"], y["train"], x["val"], y["val"])
    pred = model.predict(x["test"])
    result = {
        "model": f"frozen {backbone} mean+std features + ridge",
        "backbone": backbone,
        "alpha": alpha,
        "split": "test" if splits.test else "val",
        "n": len(test),
        "feature_dim": int(features.shape[1]),
        **iqa_metrics(pred, y["test"]),
        "srcc_ci95": list(bootstrap_ci(pred, y["test"], "srcc", seed=cfg.seed)),
        "scores": {"paths": [str(r.path) for r in test], "ridge": pred.tolist(), "mos": y["test"].tolist()},
        "seconds": time.perf_counter() - started,
    }
    out = Path(cfg.out) / "baseline_ridge.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1))
    return result
