"""What ships to a device: preprocessing and runners. Imports numpy and Pillow only, never torch."""

from edgeiqa.runtime.contract import FragmentSpec, PreprocessContract
from edgeiqa.runtime.preprocess import decode_image, fragment_view, preprocess, preprocess_image, working_view

__all__ = [
    "FragmentSpec",
    "PreprocessContract",
    "decode_image",
    "fragment_view",
    "preprocess",
    "preprocess_image",
    "working_view",
]
