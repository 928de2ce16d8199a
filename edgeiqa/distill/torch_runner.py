"""The torch backend plugin: a checkpoint folder run in torch eager mode, as a runner, with its record.

Wrapping the checkpoint in the runtime's :class:`~edgeiqa.runtime.runners.Runner` interface lets the
benchmark time it through the same :class:`~edgeiqa.runtime.predictor.Predictor` (same preprocessing,
same batching, same decode pipeline) as the exported artifacts, so "ONNX INT8 vs torch eager FP32" is a
like-for-like comparison. Like the ONNX Runtime CUDA provider with numpy I/O, a call includes the
host-to-device copy of the inputs and the copy of the scores back, which also synchronises the GPU.

Precisions: ``fp32``; ``fp16`` on CUDA runs under ``torch.autocast(float16)``: convolutions and matrix
products in half precision, reductions and the score calibration in float32, the way an eager
deployment would run FP16 without hand-editing the model.

It lives in the distill floor, beside :func:`~edgeiqa.distill.saved_model.load_model`, because the
runtime imports no layer that needs torch (tests/test_layering.py). The plugin owns the one rule for
"this path is a checkpoint folder" (:func:`is_checkpoint_folder`), registered with its record
(:data:`TORCH`), which the entry point ``edgeiqa.backends: torch`` names. Importing this module imports
no torch: torch is imported when a runner activates.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edgeiqa.errors import ConfigError, EdgeIQAError, require
from edgeiqa.runtime.manifest import manifest_path_for
from edgeiqa.runtime.runners import Backend, register
from edgeiqa.runtime.runners.base import PathLike, Runner, RunnerError, first_line

TORCH_PRECISIONS = ("fp32", "fp16")
# What a training run writes into a checkpoint, a stage folder or a run folder (distill/checkpoint.py).
# edgeiqa.distill.ensemble.ENSEMBLE_FILE, named here because that module imports torch (a test keeps them equal).
ENSEMBLE_FILE = "ensemble.json"
_CHECKPOINT_MARKERS = ("state.json", "best.json", "last.json", "final", ENSEMBLE_FILE)


class TorchEagerRunner(Runner):
    """Runs a checkpoint folder (calibrated student, teacher or a student stage) with torch eager.

    The model comes from :func:`edgeiqa.distill.saved_model.load_model`; scores are on the MOS scale.

    Args:
        path: a final student checkpoint, its stage folder or the run folder.
        device: ``cpu`` or ``cuda`` (``cuda:1`` etc.).
        precision: ``fp32`` or ``fp16`` (CUDA only; autocast).
        threads: ``torch.set_num_threads`` for CPU inference; None keeps torch's default.
        verify: check the weights' sha256 against ``state.json`` (``--no-verify`` turns it off).
    """

    backend = "torch"
    thread_safe = False

    def __init__(
        self,
        path: PathLike,
        device: str = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
        verify: bool = True,
    ) -> None:
        super().__init__(path, threads)
        if precision not in TORCH_PRECISIONS:
            raise ConfigError(f"torch precision {precision!r} is not one of {', '.join(TORCH_PRECISIONS)}")
        if precision == "fp16" and not device.startswith("cuda"):
            raise ConfigError(
                "torch fp16 is benchmarked on CUDA only (CPU half-precision kernels are not a deployment path)"
            )
        self.device = device
        self.precision = precision
        self.torch_model: Any = None
        self.checkpoint: Path | None = None
        self.loaded: Any = None  # the LoadedModel once active
        self.ensemble: Any = None  # the EnsembleTeacher, when the folder holds one (ensemble.json)
        self.verify = verify
        self._torch: Any = None

    def _activate(self) -> None:
        torch = require("torch", "train", "the torch eager benchmark")
        from edgeiqa.distill.saved_model import load_model

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RunnerError(f"{self.path}: torch device {self.device!r} requested but CUDA is not available")
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self._torch = torch
        if (Path(self.path) / ENSEMBLE_FILE).is_file():
            self._activate_ensemble()
            return
        try:
            loaded = load_model(self.path, verify=self.verify)
        except EdgeIQAError as exc:  # not a checkpoint, tampered weights, a model that does not fit them
            raise RunnerError(f"{self.path}: cannot load the checkpoint ({first_line(exc)})") from exc
        self.loaded = loaded
        self.checkpoint = loaded.folder
        self.torch_model = loaded.model.to(self.device).eval()
        self.contract = loaded.contract
        # A teacher sees a global view plus a varying number of native patches: it brings its own views.
        self._input_names = ("global_view", "patches") if loaded.kind == "teacher" else tuple(self.contract.input_names)
        self._output_names = ("score",)

    def _activate_ensemble(self) -> None:
        """An ensemble teacher folder: every member on the device, one input pair per member and view."""
        from edgeiqa.distill.ensemble import load_ensemble  # imports torch: only once a runner activates

        try:
            self.ensemble = load_ensemble(Path(self.path), verify=self.verify)
        except EdgeIQAError as exc:
            raise RunnerError(f"{self.path}: cannot load the ensemble teacher ({first_line(exc)})") from exc
        for member in self.ensemble.members:
            member.model.to(self.device).eval()
        self.checkpoint = Path(self.path)
        self.contract = self.ensemble.members[0].contract
        self._input_names = tuple(
            f"{k}/{view}/{part}"
            for k in range(len(self.ensemble.members))
            for view in self.ensemble.tta
            for part in ("global_view", "patches")
        )
        self._output_names = ("score",)

    @property
    def own_views(self) -> bool:
        """True for a teacher: the Predictor then asks :meth:`prepare_image` instead of the contract."""
        return self.ensemble is not None or (self.loaded is not None and self.loaded.kind == "teacher")

    def prepare_image(self, img: Any) -> dict[str, np.ndarray]:
        """The teacher's evaluation views of a decoded RGB image (fixed patch grid, as in validation);
        an ensemble's for every member and test-time view."""
        from edgeiqa.models.teacher_views import teacher_views

        if self.ensemble is None:
            views = teacher_views(img, self.loaded.views)
            return {"global_view": views.global_view, "patches": views.patches}
        feed = {}
        for k, member in enumerate(self.ensemble.members):
            for view in self.ensemble.tta:
                shown = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if view == "flip" else img
                views = teacher_views(shown, member.views)
                feed[f"{k}/{view}/global_view"], feed[f"{k}/{view}/patches"] = views.global_view, views.patches
        return feed

    def _deactivate(self) -> None:
        self.torch_model = None
        if self._torch is not None and self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        inputs = [torch.from_numpy(feed[name]).to(self.device, non_blocking=False) for name in self._input_names]
        # No autocast context at all for fp32: on a CPU-only build even a disabled CUDA autocast warns.
        half = torch.autocast("cuda", dtype=torch.float16) if self.precision == "fp16" else nullcontext()
        with torch.inference_mode(), half:
            if self.ensemble is not None:
                return {"score": self._ensemble_scores(dict(zip(self._input_names, inputs)))}
            if self.loaded.kind == "teacher":
                global_view, patches = inputs
                mask = torch.ones(patches.shape[:2], dtype=torch.bool, device=patches.device)
                score = self.torch_model(global_view, patches, mask)
            else:
                score = self.torch_model(*inputs)
            score = self.loaded.to_mos(score)
        return {"score": score.float().cpu().numpy().reshape(-1)}  # .cpu() waits for the GPU

    def _ensemble_scores(self, inputs: dict[str, Any]) -> np.ndarray:
        """The members' mean over their views, on the ensemble's MOS scale (as ``EnsembleTeacher.score``)."""
        scores = []
        for k, member in enumerate(self.ensemble.members):
            for view in self.ensemble.tta:
                patches = inputs[f"{k}/{view}/patches"]
                mask = self._torch.ones(patches.shape[:2], dtype=self._torch.bool, device=patches.device)
                scores.append(member.model(inputs[f"{k}/{view}/global_view"], patches, mask).float())
        low, high = self.ensemble.mos_range
        mean = self._torch.stack(scores).mean(dim=0) * (high - low) + low
        return mean.cpu().numpy().reshape(-1)

    @property
    def precision_used(self) -> str | None:
        """What the kernels compute in: autocast mixes fp16 matmuls with fp32 reductions."""
        return "fp16-autocast" if self.precision == "fp16" else "fp32"

    def peak_gpu_mb(self) -> float | None:
        """Peak CUDA memory torch allocated in this process; None on CPU."""
        if self._torch is None or not self.device.startswith("cuda"):
            return None
        return self._torch.cuda.max_memory_allocated(self.device) / 2**20

    @property
    def weights_path(self) -> Path | None:
        if self.checkpoint is None or self.ensemble is not None:
            return None  # an ensemble's weights are its members' files
        return self.checkpoint / "model.safetensors"

    def info(self) -> dict[str, Any]:
        data = super().info()
        data.update(
            device=self.device, precision=self.precision, checkpoint=str(self.checkpoint) if self.checkpoint else None
        )
        if self._torch is not None:
            data["torch_threads"] = self._torch.get_num_threads()
            if self.device.startswith("cuda"):
                data["gpu"] = self._torch.cuda.get_device_name(self.device)
        return data

    def model_compute(self, input_hw: tuple[int, int]) -> dict[str, Any]:
        """GMACs and params of the student (torch FlopCounterMode; see :mod:`edgeiqa.models.info`)."""
        try:
            from edgeiqa.models.info import model_info

            info = model_info(getattr(self.torch_model, "model", self.torch_model), input_hw)
        except Exception as exc:  # noqa: BLE001 - counting must never sink the timing
            return {
                "gmacs": None,
                "params": None,
                "compute_source": None,
                "compute_note": f"model_info failed ({first_line(exc)})",
            }
        return {
            "gmacs": info.gmacs,
            "params": info.params,
            "compute_source": "torch-flop-counter",
            "compute_note": None,
        }


def is_checkpoint_folder(path: PathLike) -> bool:
    """The one rule: a folder with no manifest beside it that holds a checkpoint, a stage or a run (an
    exported folder artifact, a ``.mlpackage``, always has its manifest beside it)."""
    path = Path(path)
    return (
        path.is_dir()
        and not manifest_path_for(path).exists()
        and any((path / name).exists() for name in _CHECKPOINT_MARKERS)
    )


TORCH = Backend(
    name="torch",
    title="torch eager",
    runner=TorchEagerRunner,
    formats=("torch",),
    suffixes=(),
    modules=("torch",),
    extra="train",
    thread_option="torch.set_num_threads",
    precisions=TORCH_PRECISIONS,
    needs_torch=True,
    claims_path=is_checkpoint_folder,
)


def register_torch_backend() -> Backend:
    """Make ``torch`` a backend of the runtime's registry, like ONNX Runtime or OpenVINO (idempotent);
    the entry point ``edgeiqa.backends: torch`` names this function. Torch-free to call."""
    return register(TORCH)
