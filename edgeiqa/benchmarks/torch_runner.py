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

from edgeiqa.errors import ConfigError, require
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.runners.base import PathLike, Runner, RunnerError, first_line

TORCH_PRECISIONS = ("fp32", "fp16")


class TorchEagerRunner(Runner):
    """Runs a calibrated student checkpoint folder (what ``load_calibrated`` reads) with torch eager.

    Args:
        path: a final student checkpoint, its stage folder or the run folder.
        device: ``cpu`` or ``cuda`` (``cuda:1`` etc.).
        precision: ``fp32`` or ``fp16`` (CUDA only; autocast).
        num_threads: ``torch.set_num_threads`` for CPU inference; None keeps torch's default.
    """

    backend = "torch"
    thread_safe = False

    def __init__(self, path: PathLike, device: str = "cpu", precision: str = "fp32",
                 num_threads: int | None = None) -> None:
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
        self._torch: Any = None

    def _activate(self) -> None:
        torch = require("torch", "train", "the torch eager benchmark")
        from edgeiqa.distill.checkpoint import resolve_checkpoint
        from edgeiqa.distill.stages import load_calibrated

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RunnerError(f"{self.path}: torch device {self.device!r} requested but CUDA is not available")
        if self.num_threads is not None:
            torch.set_num_threads(int(self.num_threads))
        try:
            self.checkpoint = resolve_checkpoint(self.path).folder
            model = load_calibrated(self.path)
        except Exception as exc:  # a folder that is not a calibrated student checkpoint
            raise RunnerError(f"{self.path}: cannot load a calibrated student checkpoint ({first_line(exc)})") from exc
        self._torch = torch
        self.model = model.to(self.device).eval()
        self.contract = model.contract
        self._input_names = tuple(self.contract.input_names)
        self._output_names = ("score",)

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
            score = self.model(*inputs)
        return {"score": score.float().cpu().numpy().reshape(-1)}  # .cpu() waits for the GPU

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

            info = model_info(self.model.model, input_hw)
        except Exception as exc:  # noqa: BLE001 - counting must never sink the timing
            return {"gmacs": None, "params": None, "compute_source": None,
                    "compute_note": f"model_info failed ({first_line(exc)})"}
        return {"gmacs": info.gmacs, "params": info.params, "compute_source": "torch-flop-counter",
                "compute_note": None}
