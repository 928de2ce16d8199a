"""EIQANet (teacher): shapes over image sizes, masking, determinism, a 4K input, named submodules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from edgeiqa.models import collate_teacher_views, create_model, model_info, teacher_views

LIGHT_TEACHERS = ["test_eiqanet", "eiqanet_cpu"]
SIZES = [(64, 64), (100, 75), (75, 130), (333, 517), (1000, 200)]  # (w, h): odd sizes, portrait, panorama


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _batch(model: torch.nn.Module, sizes: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
    views = [teacher_views(_photo(w, h, i), model.view_spec) for i, (w, h) in enumerate(sizes)]
    return collate_teacher_views(views)


@pytest.mark.parametrize("name", LIGHT_TEACHERS)
def test_scores_are_finite_for_many_sizes_and_deterministic_in_eval(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    batch = _batch(model, SIZES)
    with torch.no_grad():
        first = model(batch["global_view"], batch["patches"], batch["patch_mask"])
        again = model(batch["global_view"], batch["patches"], batch["patch_mask"])
    assert first.shape == (len(SIZES),) and torch.isfinite(first).all()
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert first.std() > 0  # different images, different scores


def test_padding_does_not_change_a_score() -> None:
    torch.manual_seed(0)
    model = create_model("test_eiqanet").eval()
    alone = _batch(model, [(64, 64)])
    mixed = _batch(model, [(64, 64), (200, 160)])  # the second image needs 4 patches: the first is padded
    assert alone["patches"].shape[1] == 1 and mixed["patch_mask"].tolist()[0] == [True, False, False, False]
    with torch.no_grad():
        a = model(alone["global_view"], alone["patches"], alone["patch_mask"])
        m = model(mixed["global_view"], mixed["patches"], mixed["patch_mask"])
        unmasked = model(alone["global_view"], alone["patches"])  # no mask = every patch is real
    torch.testing.assert_close(m[0], a[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(unmasked, a, rtol=0, atol=1e-6)


def test_a_4k_image_uses_more_patches_and_still_scores() -> None:
    model = create_model("test_eiqanet").eval()
    gradient = np.broadcast_to(np.linspace(0, 255, 3840, dtype=np.uint8)[None, :, None], (2160, 3840, 3))
    views = teacher_views(Image.fromarray(np.ascontiguousarray(gradient)), model.view_spec)
    assert views.n_patches == model.view_spec.max_patches == 4
    batch = collate_teacher_views([views])
    with torch.no_grad():
        score = model(batch["global_view"], batch["patches"], batch["patch_mask"])
    assert score.shape == (1,) and torch.isfinite(score).all()
    # The paper-scale teacher on the same 4K frame: counted on the meta device, no compute.
    assert model_info("eiqanet_convnext_tiny", (2160, 3840)).patches == 16


def test_named_submodules_can_be_hooked() -> None:
    model = create_model("test_eiqanet").eval()
    seen: dict[str, list] = {}
    for name in ("backbone", "stage_proj", "fuse", "attn_pool", "head"):
        module = getattr(model, name)
        target = module[0] if name == "stage_proj" else module
        target.register_forward_hook(lambda _m, _i, out, name=name: seen.setdefault(name, []).append(out))
    batch = _batch(model, [(64, 64), (200, 160)])
    with torch.no_grad():
        model(batch["global_view"], batch["patches"], batch["patch_mask"])
    # backbone and projections run once on the global view and once on the 5 real patches.
    assert len(seen["backbone"]) == 2 and [o.shape[0] for o in seen["fuse"]] == [5, 2]
    assert seen["attn_pool"][0].shape == (2, model.config.embed_dim) and seen["head"][0].shape == (2, 1)
