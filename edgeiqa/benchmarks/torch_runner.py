"""The torch "pseudo-artifact": a calibrated student checkpoint run in torch eager mode, as a runner.

Wrapping the checkpoint in the runtime's :class:`~edgeiqa.runtime.runners.Runner` interface lets the
benchmark time it through the same :class:`~edgeiqa.runtime.predictor.Predictor` (same preprocessing,
same batching, same decode pipeline) as the exported artifacts, so "ONNX INT8 vs torch eager FP32" is a
like-for-like comparison. Like the ONNX Runtime CUDA provider with numpy I/O, a call includes the
host-to-device copy of the inputs and the copy of the scores back, which also synchronises the GPU.

Precisions: ``fp32``; ``fp16`` on CUDA runs under ``torch.autocast(float16)``: convolutions and matrix
products in half precision, reductions and the score calibration in float32, the way an eager
deployment would run FP16 without hand-editing the model.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from edgeiqa.errors import ConfigError, EdgeIQAError, require
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.runners import register_backend
from edgeiqa.runtime.runners.base import PathLike, Runner, RunnerError, first_line

TORCH_PRECISIONS = ("fp32", "fp16")


class TorchEagerRunner(Runner):
    """Runs a checkpoint folder (calibrated student, teacher or a student stage) with torch eager.

    The model comes from :func:`edgeiqa.distill.saved_model.load_model`; scores are on the MOS scale.

    Args:
        path: a final student checkpoint, its stage folder or the run folder.
        device: ``cpu`` or ``cuda`` (``cuda:1`` etc.).
        precision: ``fp32`` or ``fp16`` (CUDA only; autocast).
        num_threads: ``torch.set_num_threads`` for CPU inference; None keeps torch's default.
        verify: check the weights' sha256 against ``state.json`` (``--no-verify`` turns it off).
    """

    backend = "torch"
    thread_safe = False

    def __init__(self, path: PathLike, device: str = "cpu", precision: str = "fp32",
                 num_threads: int | None = None, verify: bool = True) -> None:
        super().__init__(path)
        if precision not in TORCH_PRECISIONS:
            raise ConfigError(f"torch precision {precision!r} is not one of {', '.join(TORCH_PRECISIONS)}")
        if precision == "fp16" and not device.startswith("cuda"):
            raise ConfigError("torch fp16 is benchmarked on CUDA only (CPU half-precision kernels are not a deployment path)")
        self.device = device
        self.precision = precision
        self.num_threads = num_threads
        self.model: Any = None
        self.contract: PreprocessContract | None = None
        self.checkpoint: Path | None = None
        self.loaded: Any = None  # the LoadedModel once active
        self.verify = verify
        self._torch: Any = None

    def _activate(self) -> None:
        torch = require("torch", "train", "the torch eager benchmark")
        from edgeiqa.distill.saved_model import load_model

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RunnerError(f"{self.path}: torch device {self.device!r} requested but CUDA is not available")
        if self.num_threads is not None:
            torch.set_num_threads(int(self.num_threads))
        try:
            loaded = load_model(self.path, verify=self.verify)
        except EdgeIQAError as exc:  # not a checkpoint, tampered weights, a model that does not fit them
            raise RunnerError(f"{self.path}: cannot load the checkpoint ({first_line(exc)})") from exc
        self._torch = torch
        self.loaded = loaded
        self.checkpoint = loaded.folder
        self.model = loaded.model.to(self.device).eval()
        self.contract = loaded.contract
        # A teacher sees a global view plus a varying number of native patches: it brings its own views.
        self._input_names = ("global_view", "patches") if loaded.kind == "teacher" else tuple(self.contract.input_names)
        self._output_names = ("score",)

    @property
    def own_views(self) -> bool:
        """True for a teacher: the Predictor then asks :meth:`prepare_image` instead of the contract."""
        return self.loaded is not None and self.loaded.kind == "teacher"

    def prepare_image(self, img: Any) -> dict[str, np.ndarray]:
        """The teacher's evaluation views of a decoded RGB image (fixed patch grid, as in validation)."""
        from edgeiqa.models.teacher_views import teacher_views

        views = teacher_views(img, self.loaded.views)
        return {"global_view": views.global_view, "patches": views.patches}

    def _deactivate(self) -> None:
        self.model = None
        if self._torch is not None and self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        inputs = [torch.from_numpy(feed[name]).to(self.device, non_blocking=False) for name in self._input_names]
        # No autocast context at all for fp32: on a CPU-only build even a disabled CUDA autocast warns.
        half = torch.autocast("cuda", dtype=torch.float16) if self.precision == "fp16" else nullcontext()
        with torch.inference_mode(), half:
            if self.loaded.kind == "teacher":
                global_view, patches = inputs
                mask = torch.ones(patches.shape[:2], dtype=torch.bool, device=patches.device)
                score = self.model(global_view, patches, mask)
            else:
                score = self.model(*inputs)
            score = self.loaded.to_mos(score)
        return {"score": score.float().cpu().numpy().reshape(-1)}  # .cpu() waits for the GPU

    @property
    def precision_used(self) -> str:
        """What the kernels compute in: autocast mixes fp16 matmuls with fp32 reductions."""
        return "fp16-autocast" if self.precision == "fp16" else "fp32"

    def peak_gpu_mb(self) -> float | None:
        """Peak CUDA memory torch allocated in this process; None on CPU."""
        if self._torch is None or not self.device.startswith("cuda"):
            return None
        return self._torch.cuda.max_memory_allocated(self.device) / 2**20

    @property
    def weights_path(self) -> Path | None:
        return self.checkpoint / "model.safetensors" if self.checkpoint is not None else None

    def info(self) -> dict[str, Any]:
        data = super().info()
        data.update(device=self.device, precision=self.precision, num_threads=self.num_threads,
                    checkpoint=str(self.checkpoint) if self.checkpoint else None)
        if self._torch is not None:
            data["torch_threads"] = self._torch.get_num_threads()
            if self.device.startswith("cuda"):
                data["gpu"] = self._torch.cuda.get_device_name(self.device)
        return data

    def model_compute(self, input_hw: tuple[int, int]) -> dict[str, Any]:
        """GMACs and params of the student (torch FlopCounterMode; see :mod:`edgeiqa.models.info`)."""
        try:
            from edgeiqa.models.info import model_info

            info = model_info(getattr(self.model, "model", self.model), input_hw)
        except Exception as exc:  # noqa: BLE001 - counting must never sink the timing
            return {"gmacs": None, "params": None, "compute_source": None,
                    "compute_note": f"model_info failed ({first_line(exc)})"}
        return {"gmacs": info.gmacs, "params": info.params, "compute_source": "torch-flop-counter",
                "compute_note": None}


def register_torch_backend() -> None:
    """Make ``torch`` a backend of the runtime's registry, like ONNX Runtime or OpenVINO (idempotent).

    Torch-free to call: torch is imported when a runner activates. It lives here, not in the runtime,
    because the runtime imports no layer that needs torch (tests/test_layering.py)."""
    register_backend("torch", TorchEagerRunner)
