"""Registry, factory, config round trip, and construction + one small forward of every variant."""

from __future__ import annotations

import json

import pytest
import torch

from edgeiqa.errors import ConfigError
from edgeiqa.models import (
    EIQANet,
    EQCNet,
    collate_teacher_views,
    create_model,
    format_info,
    is_model,
    list_models,
    model_info,
    register_model,
    teacher_views,
)
from edgeiqa.runtime.contract import PreprocessContract

# Parametrized over the registry itself (timm's way), not over a hand-kept list: a new variant is
# built, run and checked by these tests the moment it is registered. Construction uses
# pretrained=False (create_model's default) and tiny inputs, so the whole set stays fast.
MODELS = list_models()


def test_list_models_and_patterns() -> None:
    assert MODELS == sorted(set(MODELS)) and all(is_model(n) for n in MODELS)
    assert {"test_eqcnet", "test_eiqanet"} <= set(MODELS)  # the CI variants every other test builds on
    assert list_models("test_*") == [n for n in MODELS if n.startswith("test_")]
    assert list_models("eqcnet_*") == [n for n in MODELS if n.startswith("eqcnet_")] != []
    assert list_models("eiqanet_*") == [n for n in MODELS if n.startswith("eiqanet_")] != []
    assert list_models("no_such_*") == []
    assert is_model("test_eqcnet") and not is_model("resnet50")


def test_unknown_model_and_unknown_option_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match=rf"unknown model 'eqcnet_huge'; known models: {', '.join(MODELS)}"):
        create_model("eqcnet_huge")
    with pytest.raises(ConfigError, match=r"model 'test_eqcnet' has no option\(s\) \['embed_dims'\]; options: "):
        create_model("test_eqcnet", embed_dims=8)


def test_registering_a_second_builder_under_a_taken_name_fails() -> None:
    def test_eqcnet(pretrained: bool = False, **kwargs: object) -> torch.nn.Module:
        return torch.nn.Identity()

    with pytest.raises(ValueError, match="model 'test_eqcnet' is registered twice"):
        register_model(test_eqcnet)


def test_config_round_trips_through_json_and_rebuilds_the_same_architecture() -> None:
    model = create_model("test_eqcnet", embed_dim=24, contract=PreprocessContract(working_size=48))
    assert model.model_name == "test_eqcnet" and model.contract.working_size == 48
    json.dumps(model.model_kwargs)  # a checkpoint can store how to rebuild the model
    again = create_model(model.model_name, **json.loads(json.dumps(model.config.to_dict())))
    assert again.config == model.config
    assert again.state_dict().keys() == model.state_dict().keys()
    teacher = create_model("test_eiqanet")
    rebuilt = create_model("test_eiqanet", **json.loads(json.dumps(teacher.config.to_dict())))
    assert rebuilt.config == teacher.config and rebuilt.view_spec == teacher.view_spec


@pytest.mark.parametrize("name", MODELS)
def test_every_variant_builds_carries_a_contract_and_scores_a_small_input(name: str) -> None:
    from PIL import Image

    torch.manual_seed(0)
    model = create_model(name).eval()
    assert isinstance(model.contract, PreprocessContract)
    if isinstance(model, EQCNet):
        assert model.contract.input_names == ("image", "fragments")
        inputs = model.example_inputs(batch=1, image_hw=(64, 96))
    else:
        assert isinstance(model, EIQANet) and model.contract.fragments is None
        batch = collate_teacher_views([teacher_views(Image.new("RGB", (48, 40), (90, 120, 200)), model.view_spec)])
        assert batch["n_patches"].tolist() == [1]
        inputs = (batch["global_view"], batch["patches"], batch["patch_mask"])
    with torch.no_grad():
        score = model(*inputs)
    assert score.shape == (1,) and torch.isfinite(score).all()


def test_default_student_fits_the_edge_budget_at_4k() -> None:
    info = model_info("eqcnet_mobilenetv3_large", input_hw=(2160, 3840))
    assert info.role == "student" and info.inputs == {"image": (1, 3, 384, 384), "fragments": (1, 3, 256, 256)}
    assert 0.5 < info.gmacs <= 2.0, info.gmacs
    teacher = model_info("eiqanet_convnext_tiny", input_hw=(2160, 3840))
    assert teacher.patches == 16 and teacher.gmacs > 40 * info.gmacs
    # Patch count, hence teacher compute, follows the image area; the student's cost does not.
    small = model_info("eiqanet_convnext_tiny", input_hw=(480, 640))
    assert small.patches == 1 and small.gmacs < teacher.gmacs / 4
    assert model_info("eqcnet_mobilenetv3_large", input_hw=(480, 640)).macs == info.macs


def test_model_info_counts_a_live_model_without_touching_it() -> None:
    model = create_model("test_eqcnet").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    info = model_info(model, input_hw=(100, 200))
    assert info.name == "test_eqcnet" and info.params == sum(p.numel() for p in model.parameters())
    assert model.training and all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert next(model.parameters()).device.type == "cpu"
    text = format_info(info)
    assert "test_eqcnet (student)" in text and "input image     200x100" in text and "GMACs" in text
    assert "32x32 mosaic" in text
    teacher_text = format_info(model_info("test_eiqanet"))
    assert "4 native-resolution patches of 32 px" in teacher_text


def test_model_info_matches_a_hand_count_for_one_linear_layer() -> None:
    from edgeiqa.models.info import count_macs

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(10, 7)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    assert count_macs(Tiny(), {"x": (3, 10)}) == 3 * 10 * 7
