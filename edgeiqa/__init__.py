"""edgeiqa: distil a strong blind image-quality teacher into an edge student and carry it onto devices.

Importing the top-level package is cheap and torch-free; heavy parts live in subpackages that are
imported on demand (``edgeiqa.models``, ``edgeiqa.distill`` need torch; ``edgeiqa.runtime`` does not).
"""

__version__ = "0.1.0"
