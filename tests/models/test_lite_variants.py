"""The EfficientNet-Lite teacher and student: their contracts carry the backbone's own normalisation, and cost.

Architecture-only (pretrained=False): no weights needed. The offline weights are tested in test_lite_weights.
"""

from __future__ import annotations

import pytest

from edgeiqa.models import create_model, model_info
from edgeiqa.models.pretrained import backbone_normalisation
from edgeiqa.runtime.contract import IMAGENET_MEAN, IMAGENET_STD

HALF = (0.5, 0.5, 0.5)


def test_lite_variants_carry_the_tf_normalisation_everywhere() -> None:
    student = create_model("eqcnet_lite0")
    teacher = create_model("eiqanet_lite2")
    assert student.config.backbone == "efficientnet_lite0"
    assert teacher.config.backbone == "efficientnet_lite2"
    for contract in (student.contract, student.config.contract, teacher.contract, teacher.view_spec.contract):
        assert contract.mean == HALF and contract.std == HALF
    # What a checkpoint stores and an exported manifest copies.
    assert student.config.to_dict()["contract"]["mean"] == HALF
    assert teacher.config.to_dict()["views"]["contract"]["std"] == HALF


def test_mobilenet_variants_keep_imagenet_normalisation() -> None:
    for name in ("eqcnet_mobilenetv3_large", "eqcnet_mobilenetv3_small", "eiqanet_cpu"):
        contract = create_model(name).contract
        assert (contract.mean, contract.std) == (IMAGENET_MEAN, IMAGENET_STD), name


def test_normalisation_follows_an_overridden_backbone_unless_the_contract_names_it() -> None:
    # Swapping the backbone by config must not leave the old backbone's mean/std behind.
    student = create_model("eqcnet_mobilenetv3_small", backbone="tf_efficientnet_lite0")
    assert student.contract.mean == HALF
    resized = create_model("eqcnet_lite0", contract={"working_size": 256, "fragments": {"grid": 4, "patch": 32}})
    assert (resized.contract.working_size, resized.contract.mean) == (256, HALF)
    explicit = create_model("eqcnet_lite0", contract={"working_size": 256, "mean": [0.4, 0.4, 0.4]})
    assert explicit.contract.mean == (0.4, 0.4, 0.4) and explicit.contract.std == HALF
    teacher = create_model("eiqanet_cpu", backbone="efficientnet_lite0", views={"patch": 96, "max_patches": 2})
    assert teacher.view_spec.patch == 96 and teacher.contract.mean == HALF
    assert teacher.contract.working_size == 224  # the variant's own global view, not the spec default


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tf_efficientnet_lite2", (HALF, HALF)),
        ("efficientnet_lite0", (HALF, HALF)),
        ("mobilenetv3_large_100", (IMAGENET_MEAN, IMAGENET_STD)),
        ("test_convnext", (HALF, HALF)),
    ],
)
def test_backbone_normalisation_reads_timm_except_for_the_tf_lite_weights(
    name: str, expected: tuple[tuple[float, ...], tuple[float, ...]]
) -> None:
    # timm's efficientnet_lite0 config says ImageNet (its own weights); edgeiqa loads the TF ones: 0.5.
    assert backbone_normalisation(name) == expected


def test_lite0_student_fits_the_edge_budget_on_a_4k_photo() -> None:
    info = model_info("eqcnet_lite0", (2160, 3840))
    assert info.gmacs <= 2.0
    assert info.gmacs > 1.0  # a real Lite0 at 384 px + a 256 px mosaic, not a stub
    assert info.inputs == {"image": (1, 3, 384, 384), "fragments": (1, 3, 256, 256)}


def test_lite2_teacher_patches_grow_with_the_photo() -> None:
    livec = model_info("eiqanet_lite2", (500, 500))
    uhd = model_info("eiqanet_lite2", (2160, 3840))
    assert (livec.patches, uhd.patches) == (1, 6)
    assert livec.working_hw == (260, 260) and uhd.patch_size == 224
    assert livec.gmacs < uhd.gmacs


def test_a_partial_contract_keeps_the_variants_other_values() -> None:
    # YAML's `contract: {working_size: 256}` changes the size only: the 8x8 mosaic and 0.5/0.5 stay.
    student = create_model("eqcnet_lite0", contract={"working_size": 256, "fragments": {"patch": 16}})
    assert student.contract.working_size == 256
    assert (student.contract.fragments.grid, student.contract.fragments.patch) == (8, 16)
    assert student.contract.mean == HALF and student.contract.std == HALF


def test_partial_teacher_views_keep_the_variants_patches_and_normalisation() -> None:
    teacher = create_model("eiqanet_lite2", views={"contract": {"working_size": 384}})
    spec = teacher.view_spec
    assert spec.contract.working_size == 384
    assert (spec.patch, spec.density, spec.max_patches) == (224, 8.0, 6)
    assert spec.contract.fragments is None and spec.contract.mean == HALF
    # Named values still win.
    teacher = create_model("eiqanet_lite2", views={"max_patches": 2, "contract": {"mean": [0.4] * 3}})
    assert teacher.view_spec.max_patches == 2 and teacher.view_spec.patch == 224
    assert teacher.view_spec.contract.mean == (0.4, 0.4, 0.4) and teacher.view_spec.contract.std == HALF


def test_the_students_reducing_gap_changes_nothing_below_twice_its_working_size() -> None:
    # Why LIVE-C results (500 px photos) hold for the cheaper gap: only larger photos are box-reduced.
    import dataclasses

    import numpy as np
    from PIL import Image

    from edgeiqa.runtime.preprocess import working_view

    contract = create_model("eqcnet_lite0").contract
    assert contract.reducing_gap == 1.0
    pixels = np.random.default_rng(0).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    old = dataclasses.replace(contract, reducing_gap=3.0)
    photo = Image.fromarray(pixels)
    assert np.array_equal(working_view(photo, contract), working_view(photo, old))
    big = Image.fromarray(np.repeat(np.repeat(pixels, 4, axis=0), 4, axis=1))  # 2000 px: now box-reduced
    assert not np.array_equal(working_view(big, contract), working_view(big, old))


def test_the_student_ladder_spans_the_edge_budgets_at_4k() -> None:
    # Issue 23's ladder: a smallest student at <= 0.3 GMACs on a 4K photo, a middle one, the default at 1.6.
    gmacs = {
        name: model_info(name, (2160, 3840)).gmacs for name in ("eqcnet_lite0_s", "eqcnet_lite0_m", "eqcnet_lite0")
    }
    assert 0.2 < gmacs["eqcnet_lite0_s"] <= 0.3
    assert gmacs["eqcnet_lite0_s"] < gmacs["eqcnet_lite0_m"] < 1.0 < gmacs["eqcnet_lite0"]
    # Every rung keeps native-resolution fragments (noise and compression live there).
    for name in gmacs:
        assert "fragments" in model_info(name, (2160, 3840)).inputs
