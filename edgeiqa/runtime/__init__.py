"""What ships to a device: preprocessing, manifests, runners and the Predictor.

Imports numpy and Pillow only, never torch; backends (onnxruntime, openvino, tensorrt, coremltools) are
imported lazily by the runner that needs them.
"""

from edgeiqa.runtime.batch import BatchResult, predict_files, write_scores_csv
from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.manifest import ArtifactManifest, manifest_path_for, read_manifest, sha256_file, write_manifest
from edgeiqa.runtime.predictor import Predictor
from edgeiqa.runtime.preprocess import decode_image, fragment_view, preprocess, preprocess_image, working_view
from edgeiqa.runtime.runners import (
    CoreMLRunner,
    OnnxRuntimeRunner,
    OpenVINORunner,
    Runner,
    TensorRTRunner,
    runner_for,
)

__all__ = [
    "ArtifactManifest",
    "BatchResult",
    "CoreMLRunner",
    "FragmentSpec",
    "OnnxRuntimeRunner",
    "OpenVINORunner",
    "Predictor",
    "PreprocessContract",
    "Runner",
    "TensorRTRunner",
    "decode_image",
    "fragment_view",
    "manifest_path_for",
    "predict_files",
    "preprocess",
    "preprocess_image",
    "read_manifest",
    "runner_for",
    "sha256_file",
    "working_view",
    "write_manifest",
    "write_scores_csv",
]
