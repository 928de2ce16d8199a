"""Does the runner's graph match what the manifest says? Input names and shapes against the contract, and
the score output, checked once when a :class:`~edgeiqa.runtime.predictor.Predictor` is built."""

from __future__ import annotations

from edgeiqa.errors import ConfigError
from edgeiqa.runtime.contract import PreprocessContract
from edgeiqa.runtime.manifest import ArtifactManifest
from edgeiqa.runtime.runners import Runner


def check_inputs(runner: Runner, contract: PreprocessContract) -> None:
    if set(runner.input_names) != set(contract.input_names):
        raise ConfigError(
            f"{runner.label}: the model takes inputs {list(runner.input_names)} but its preprocessing contract "
            f"produces {list(contract.input_names)}; the manifest does not describe this artifact"
        )
    declared = runner.input_shapes
    for name, (expected, key) in contract_shapes(contract).items():
        graph = declared.get(name)
        if not graph:  # the backend does not say (TensorRT, Core ML, torch): names are all we can check
            continue
        if not _compatible(graph, expected):
            raise ConfigError(
                f"{runner.label}: the graph's input {name!r} has shape {_fmt(graph)} but the manifest's "
                f"preprocessing contract produces {_fmt(expected)} ({key}); the manifest does not describe "
                "this artifact"
            )


def contract_shapes(contract: PreprocessContract) -> dict[str, tuple[tuple[int | None, ...], str]]:
    """Per input, the (batch-free: None) shape the contract produces and the contract keys that set it."""
    side = contract.working_size if contract.size_policy == "square" else None
    shapes = {
        "image": ((None, 3, side, side), f"size_policy {contract.size_policy}, working_size {contract.working_size}")
    }
    if contract.fragments is not None:
        spec, mosaic = contract.fragments, contract.fragments.mosaic_size
        shapes["fragments"] = ((None, 3, mosaic, mosaic), f"fragments grid {spec.grid} x patch {spec.patch}")
    return shapes


def _compatible(graph: tuple[int | None, ...], expected: tuple[int | None, ...]) -> bool:
    """Fixed dims must agree; a varying contract dim (aspect-preserving H/W) needs a dynamic graph dim.
    The batch dim (index 0) is free: a static batch-1 engine is the batch code's business."""
    if len(graph) != len(expected):
        return False
    for g, e in zip(graph[1:], expected[1:]):
        if (e is None and g is not None) or (e is not None and g is not None and g != e):
            return False
    return True


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def pick_output(runner: Runner, manifest: ArtifactManifest | None, requested: str | None) -> str:
    outputs = runner.output_names
    candidates = [requested] if requested else ([manifest.outputs[0]["name"]] if manifest else []) + ["score"]
    for name in candidates:
        if name in outputs:
            return name
    if requested is None and len(outputs) == 1:
        return outputs[0]
    raise ConfigError(f"{runner.label}: no score output among {list(outputs)} (looked for {candidates})")
