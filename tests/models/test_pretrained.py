"""Weights from local files: timm backbone weights via pretrained_cfg_overlay, whole-model checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from edgeiqa.errors import ConfigError
from edgeiqa.models import create_model


def _saved_classifier_weights(tmp_path: Path, name: str) -> dict[str, torch.Tensor]:
    """What timm would download: a full classifier's state dict, here random and saved locally."""
    torch.manual_seed(123)
    state = timm.create_model(name).state_dict()
    torch.save(state, tmp_path / "backbone.pth")
    return state


def test_pretrained_overlay_file_loads_into_every_backbone(tmp_path: Path) -> None:
    saved = _saved_classifier_weights(tmp_path, "mobilenetv3_small_050")
    overlay = dict(file=str(tmp_path / "backbone.pth"))
    model = create_model("test_eqcnet", pretrained=True, pretrained_cfg_overlay=overlay, shared_backbone=False)
    fresh = create_model("test_eqcnet")
    for backbone in (model.backbone, model.fragment_backbone):
        state = backbone.state_dict()
        weights = [k for k in state if k.endswith(".weight")]
        assert len(weights) > 20
        for key in weights:
            torch.testing.assert_close(state[key], saved[key], rtol=0, atol=0)
    assert not torch.equal(fresh.backbone.conv_stem.weight, model.backbone.conv_stem.weight)
    assert "pretrained_cfg_overlay" not in model.model_kwargs  # a path on this machine is no architecture


def test_teacher_backbone_loads_from_a_local_file_too(tmp_path: Path) -> None:
    saved = _saved_classifier_weights(tmp_path, "test_convnext")
    model = create_model("test_eiqanet", pretrained_cfg_overlay=dict(file=str(tmp_path / "backbone.pth")))
    torch.testing.assert_close(model.backbone.stem_0.weight, saved["stem.0.weight"], rtol=0, atol=0)


def test_missing_overlay_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match=rf"pretrained weights file {missing} does not exist"):
        create_model("test_eqcnet", pretrained=True, pretrained_cfg_overlay=dict(file=str(missing)))


@pytest.mark.parametrize("nest", [None, "model", "state_dict"])
def test_checkpoint_path_restores_the_whole_model(tmp_path: Path, nest: str | None) -> None:
    torch.manual_seed(7)
    trained = create_model("test_eqcnet")
    with torch.no_grad():
        trained.head.pivots.add_(1.0)
    state = trained.state_dict()
    torch.save(state if nest is None else {nest: state, "epoch": 3}, tmp_path / "ckpt.pt")
    loaded = create_model("test_eqcnet", checkpoint_path=tmp_path / "ckpt.pt")
    for key, value in state.items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoint_from_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    trained = create_model("test_eiqanet")
    save_file(trained.state_dict(), str(tmp_path / "ckpt.safetensors"))
    loaded = create_model("test_eiqanet", checkpoint_path=tmp_path / "ckpt.safetensors")
    torch.testing.assert_close(loaded.head[0].weight, trained.head[0].weight, rtol=0, atol=0)


def test_a_checkpoint_for_another_model_names_the_file_and_keys(tmp_path: Path) -> None:
    torch.save(create_model("test_eiqanet").state_dict(), tmp_path / "teacher.pt")
    with pytest.raises(ConfigError, match=r"checkpoint .*teacher\.pt does not fit this model: missing \["):
        create_model("test_eqcnet", checkpoint_path=tmp_path / "teacher.pt")
    torch.save(create_model("test_eqcnet", embed_dim=16).state_dict(), tmp_path / "narrow.pt")
    with pytest.raises(ConfigError, match=r"narrow\.pt does not fit this model: .*size mismatch"):
        create_model("test_eqcnet", checkpoint_path=tmp_path / "narrow.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"junk\.pt: cannot read checkpoint"):
        create_model("test_eqcnet", checkpoint_path=tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match=r"checkpoint .*absent\.pt does not exist"):
        create_model("test_eqcnet", checkpoint_path=tmp_path / "absent.pt")


def test_pretrained_without_network_or_cache_says_how_to_load_a_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # fail fast instead of retrying for ~45 s
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    with pytest.raises(
        ConfigError,
        match=r"cannot load pretrained weights for backbone 'mobilenetv3_small_050' .*"
        r"offline, pass pretrained_cfg_overlay=dict\(file=",
    ):
        create_model("test_eqcnet", pretrained=True)
