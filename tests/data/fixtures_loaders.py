"""Writers of tiny datasets in each official layout, into a tmp folder (no binary fixtures committed).

Each writer returns what a correct loader must find, so tests compare against the written truth.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int, size: tuple[int, int] = (32, 24)) -> Path:
    """A small noisy RGB image (JPEG or PNG by suffix); noise so that fragment jitter is visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- UHD-IQA: uhd-iqa-metadata.csv (+ extra official columns), images in <set>/ -----------------

UHD_ROWS = [  # image_name, quality_mos, set
    ("1.jpg", 0.61, "training"),
    ("2.jpg", 0.72, "training"),
    ("3.jpg", 0.45, "training"),
    ("4.jpg", 0.55, "validation"),
    ("5.jpg", 0.80, "test"),
]


def write_uhdiqa(root: Path, layout: str = "sets") -> Path:
    """``layout``: "sets" (training/, validation/, test/), "challenge" (challenge/<set>/) or "flat" (images/)."""
    rows = []
    for i, (name, mos, split) in enumerate(UHD_ROWS):
        folder = {"sets": root / split, "challenge": root / "challenge" / split, "flat": root / "images"}[layout]
        write_image(folder / name, i)
        rows.append((name, mos, split, "", 3840, 2160, 100 + i))
    header = ["image_name", "quality_mos", "set", "subset", "orig_width", "orig_height", "views"]
    return write_csv(root / "uhd-iqa-metadata.csv", header, rows)


# --- KonIQ-10k: scores_and_distributions.csv (+ optional distributions_sets.csv), 1024x768/ -------

KONIQ_ROWS = [  # image_name, MOS (1..5), SD, MOS_zscore (1..100), set
    ("10004473376.jpg", 3.83, 0.53, 77.38, "training"),
    ("10007357496.jpg", 3.48, 0.58, 68.73, "test"),
    ("100117038.jpg", 3.84, 0.53, 75.11, "training"),
    ("10043785683.jpg", 3.57, 0.50, 71.20, "validation"),
]
KONIQ_SCORE_HEADER = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "MOS_zscore"]


def write_koniq(root: Path, sets: bool = True, scores: bool = True, folder: str = "1024x768") -> None:
    for i, (name, *_rest) in enumerate(KONIQ_ROWS):
        write_image(root / folder / name, 10 + i)
    if scores:
        rows = [(n, 0, 0.1, 0.4, 0.5, 0, 100, mos, sd, z) for n, mos, sd, z, _ in KONIQ_ROWS]
        write_csv(root / "koniq10k_scores_and_distributions.csv", KONIQ_SCORE_HEADER, rows)
    if sets:
        header = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "set"]
        rows = [(n, 0, 0.1, 0.4, 0.5, 0, 100, z, sd, s) for n, _mos, sd, z, s in KONIQ_ROWS]
        write_csv(root / "koniq10k_distributions_sets.csv", header, rows)


# --- SPAQ: Annotations/MOS and Image attribute scores.csv (CSV export of the .xlsx), TestImage/ ---

SPAQ_ROWS = [("00001.jpg", 42.5), ("00002.jpg", 61.0), ("00003.jpg", 18.25)]
SPAQ_HEADER = ["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]
SPAQ_SHEET = "MOS and Image attribute scores"


def write_spaq(root: Path, xlsx: bool = False) -> Path:
    for i, (name, _) in enumerate(SPAQ_ROWS):
        write_image(root / "TestImage" / name, 20 + i)
    if xlsx:
        path = root / "Annotations" / f"{SPAQ_SHEET}.xlsx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK\x03\x04 not read by the tests: a fake openpyxl stands in")
        return path
    rows = [(n, m, 50, 50, 50, 50, 50) for n, m in SPAQ_ROWS]
    return write_csv(root / "Annotations" / f"{SPAQ_SHEET}.csv", SPAQ_HEADER, rows)


# --- LIVE-C: Data/*.mat as MATLAB cell/row vectors (7 training + N test entries), Images/ ---------

LIVEC_TRAINING = [f"t{i}.bmp" for i in range(1, 8)]
LIVEC_TEST = [("100.bmp", 63.9, 18.1), ("101.JPG", 24.3, 15.2), ("102.bmp", 80.0, 12.0)]


def write_livec_mat(root: Path, with_std: bool = True) -> None:
    from scipy.io import savemat

    names = LIVEC_TRAINING + [n for n, _, _ in LIVEC_TEST]
    for i, name in enumerate(LIVEC_TRAINING):
        write_image(root / "Images" / "trainingImages" / name, 30 + i)
    for i, (name, _, _) in enumerate(LIVEC_TEST):
        write_image(root / "Images" / name, 40 + i)
    cell = np.empty((len(names), 1), dtype=object)  # a 1169x1 cell array of strings in the release
    for i, name in enumerate(names):
        cell[i, 0] = np.array([name])
    mos = np.array([[50.0 + i for i in range(7)] + [m for _, m, _ in LIVEC_TEST]])  # 1x1169 row vector
    std = np.array([[10.0] * 7 + [s for _, _, s in LIVEC_TEST]])
    (root / "Data").mkdir(parents=True, exist_ok=True)
    savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cell})
    savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos})
    if with_std:
        savemat(root / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": std})


def write_livec_csv(root: Path) -> Path:
    rows = [("533.JPG", 73.6235, 20.4016), ("534.JPG", 52.7097, 22.7935)]
    for i, (name, _, _) in enumerate(rows):
        write_image(root / "images" / name, 50 + i, size=(40, 40))
    return write_csv(root / "mos.csv", ["img_name", "mos", "std"], rows)


# --- KADID-10k: dmos.csv, images/ holding distorted (and reference) images -------------------------

KADID_ROWS = [  # dist_img, ref_img, dmos, var
    ("I01_01_01.png", "I01.png", 4.57, 0.16),
    ("I01_01_05.png", "I01.png", 2.10, 0.49),
    ("I02_03_02.png", "I02.png", 3.35, 0.25),
    ("I02_03_04.png", "I02.png", 1.50, 0.09),
]


def write_kadid(root: Path) -> Path:
    for i, (dist, ref, _, _) in enumerate(KADID_ROWS):
        write_image(root / "images" / dist, 60 + i)
        write_image(root / "images" / ref, 70 + i)
    return write_csv(root / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"], KADID_ROWS)


# --- generic CSV in the embedded synthetic dataset's form ------------------------------------------

SYNTH_ROWS = [  # path, mos, split, source, distortion, level
    ("images/astronaut_blur_1.png", 80.0, "train", "astronaut", "blur", 1),
    ("images/astronaut_blur_3.png", 35.5, "train", "astronaut", "blur", 3),
    ("images/coffee_jpeg_2.png", 55.0, "val", "coffee", "jpeg", 2),
    ("images/camera_noise_1.png", 70.0, "test", "camera", "noise", 1),
]


def write_synthetic(root: Path) -> Path:
    for i, row in enumerate(SYNTH_ROWS):
        write_image(root / row[0], 80 + i)
    return write_csv(root / "mos.csv", ["path", "mos", "split", "source", "distortion", "level"], SYNTH_ROWS)
