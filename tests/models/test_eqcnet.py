"""EQCNet (student): both views, many input sizes, determinism, embeddings, hooks, weight sharing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from edgeiqa.models import EQCNet, create_model, list_models
from edgeiqa.runtime.preprocess import preprocess_image

STUDENTS = list_models("*eqcnet*")
LIGHT_STUDENTS = ["test_eqcnet", "eqcnet_mobilenetv3_small"]
IMAGE_HW = [(64, 64), (75, 100), (130, 75), (97, 203)]  # (h, w): non-multiples of 32, portrait


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_every_registered_student_variant_is_an_eqcnet() -> None:
    assert {"eqcnet_mobilenetv3_large", "eqcnet_mobilenetv3_small", "test_eqcnet"} <= set(STUDENTS)


@pytest.mark.parametrize("name", LIGHT_STUDENTS)
@pytest.mark.parametrize("hw", IMAGE_HW)
def test_any_image_size_gives_one_finite_score_per_image(name: str, hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    image, fragments = model.example_inputs(batch=2, image_hw=hw)
    with torch.no_grad():
        emb = model.forward_features(image, fragments)
        score = model(image, fragments)
    assert emb.shape == (2, model.config.embed_dim) and score.shape == (2,)
    assert torch.isfinite(score).all()
    torch.testing.assert_close(model.forward_head(emb), score)


@pytest.mark.parametrize("name", LIGHT_STUDENTS)
def test_eval_mode_is_deterministic_and_batch_independent(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    inputs = model.example_inputs(batch=3)
    with torch.no_grad():
        batch = model(*inputs)
        again = model(*inputs)
        single = model(*(x[1:2] for x in inputs))
    torch.testing.assert_close(batch, again, rtol=0, atol=0)
    torch.testing.assert_close(single, batch[1:2], rtol=0, atol=1e-5)


def test_inputs_come_from_the_runtime_preprocessing_contract() -> None:
    model = create_model("eqcnet_mobilenetv3_small").eval()
    arrays = preprocess_image(_photo(900, 600), model.contract)
    assert set(arrays) == {"image", "fragments"}
    assert arrays["image"].shape == (3, 224, 224) and arrays["fragments"].shape == (3, 224, 224)
    with torch.no_grad():
        score = model(*(torch.from_numpy(arrays[k])[None] for k in model.contract.input_names))
    assert score.shape == (1,) and torch.isfinite(score).all()


def test_missing_fragments_is_an_error_and_an_image_only_student_works() -> None:
    model = create_model("test_eqcnet").eval()
    image, _ = model.example_inputs()
    with pytest.raises(ValueError, match="contract has a fragment view: pass fragments"):
        model(image)
    single = create_model("test_eqcnet", contract={"working_size": 64, "fragments": None}).eval()
    assert single.contract.input_names == ("image",) and not hasattr(single, "fragment_backbone")
    assert single(image).shape == (1,)


def test_shared_backbone_ties_weights_but_keeps_batchnorm_per_view() -> None:
    separate = create_model("test_eqcnet", shared_backbone=False)
    shared = create_model("test_eqcnet", shared_backbone=True)
    assert shared.config.shared_backbone and not create_model("test_eqcnet").config.shared_backbone
    assert shared.fragment_backbone.conv_stem.weight is shared.backbone.conv_stem.weight
    assert shared.fragment_backbone.bn1.weight is not shared.backbone.bn1.weight
    norms = [m for m in shared.fragment_backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    bn_params = sum(p.numel() for m in norms for p in m.parameters(recurse=False))
    backbone = sum(p.numel() for p in separate.backbone.parameters())
    params = [sum(p.numel() for p in m.parameters()) for m in (separate, shared)]  # tied ones count once
    assert params[0] - params[1] == backbone - bn_params
    # Running statistics stay per view: a training step on different inputs moves them apart.
    shared.train()(*shared.example_inputs(batch=2))
    assert not torch.equal(shared.backbone.bn1.running_mean, shared.fragment_backbone.bn1.running_mean)
    # A gradient step through either view moves the one shared tensor.
    opt = torch.optim.SGD(shared.parameters(), lr=1.0)
    before = shared.backbone.conv_stem.weight.detach().clone()
    shared(*shared.example_inputs(batch=2)).sum().backward()
    opt.step()
    assert not torch.equal(before, shared.backbone.conv_stem.weight)
    assert shared.fragment_backbone.conv_stem.weight is shared.backbone.conv_stem.weight


def test_shared_backbone_survives_a_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("test_eqcnet", shared_backbone=True)
    torch.save(model.state_dict(), tmp_path / "student.pt")
    loaded = create_model("test_eqcnet", shared_backbone=True, checkpoint_path=tmp_path / "student.pt").eval()
    assert loaded.fragment_backbone.conv_stem.weight is loaded.backbone.conv_stem.weight
    inputs = model.example_inputs(batch=2)
    torch.testing.assert_close(loaded(*inputs), model.eval()(*inputs), rtol=0, atol=0)


def test_named_submodules_can_be_hooked() -> None:
    model = create_model("test_eqcnet").eval()
    names = ("backbone", "fragment_backbone", "fuse", "fragment_fuse", "embed", "head")
    seen: dict[str, object] = {}
    for name in names:
        getattr(model, name).register_forward_hook(lambda _m, _i, out, name=name: seen.setdefault(name, out))
    with torch.no_grad():
        model(*model.example_inputs(batch=2))
    assert set(seen) == set(names)
    assert [f.shape[1] for f in seen["backbone"]] == model.backbone.feature_info.channels()
    assert seen["backbone"][0].shape[-2:] == (8, 8) and seen["fragment_backbone"][0].shape[-2:] == (4, 4)
    assert seen["fuse"].shape == (2, model.config.fuse_channels, 8, 8)  # stride 8 of the 64 px image
    assert seen["fragment_fuse"].shape[-2:] == (4, 4)  # stride 8 of the 32 px mosaic
    assert seen["embed"].shape == (2, model.config.embed_dim) and seen["head"].shape == (2,)


def test_order_losses_are_named_finite_and_differentiable() -> None:
    model = create_model("test_eqcnet")
    emb = model.forward_features(*model.example_inputs(batch=4))
    losses = model.order_losses(emb, torch.tensor([0.1, 0.4, 0.6, 0.9]))
    assert set(losses) == {"pivot_anchor", "pivot_order"}
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total) and model.embed[0].weight.grad.abs().sum() > 0
    assert isinstance(model, EQCNet)
