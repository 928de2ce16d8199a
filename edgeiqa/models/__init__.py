"""Quality models: the EIQANet teacher, the EQCNet student, their registry, weights and cost.

``create_model(name, pretrained=False, **overrides)`` builds any registered variant;
``list_models("eqcnet_*")`` lists them. Importing this package imports torch and timm.
"""

from edgeiqa.models.comparison_head import ComparisonHead
from edgeiqa.models.eiqanet import EIQANet, EIQANetConfig
from edgeiqa.models.eqcnet import EQCNet, EQCNetConfig
from edgeiqa.models.info import ModelInfo, count_macs, format_info, model_info
from edgeiqa.models.pretrained import create_backbone, load_checkpoint, read_state_dict
from edgeiqa.models.registry import create_model, is_model, list_models, register_model
from edgeiqa.models.teacher_views import (
    TeacherViews,
    TeacherViewSpec,
    collate_teacher_views,
    patch_count,
    patch_origins,
    teacher_views,
)

__all__ = [
    "ComparisonHead",
    "EIQANet",
    "EIQANetConfig",
    "EQCNet",
    "EQCNetConfig",
    "ModelInfo",
    "TeacherViewSpec",
    "TeacherViews",
    "collate_teacher_views",
    "count_macs",
    "create_backbone",
    "create_model",
    "format_info",
    "is_model",
    "list_models",
    "load_checkpoint",
    "model_info",
    "patch_count",
    "patch_origins",
    "read_state_dict",
    "register_model",
    "teacher_views",
]
