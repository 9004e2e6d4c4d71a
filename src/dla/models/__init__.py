"""Model families and the registry. Importing a family file registers its variants."""

from . import dla, dla_up, resnet, deeplabv3, densenet, ladder_densenet, dfanet  # noqa: F401, I001  (registers the variants, DLA first)
from ._features import FeatureInfo, FeatureListNet
from ._outputs import AuxOutput
from ._pretrained import PretrainedCfg, load_pretrained, load_state_dict_checked, read_state_dict
from ._registry import create_model, list_models, register_model
from .dla import DLA
from .dla_up import DLASeg, DLAUp
from .densenet import DenseNet
from .resnet import ResNet

__all__ = [
    "AuxOutput",
    "DLA",
    "DLASeg",
    "DLAUp",
    "DenseNet",
    "FeatureInfo",
    "FeatureListNet",
    "PretrainedCfg",
    "ResNet",
    "create_model",
    "list_models",
    "load_pretrained",
    "load_state_dict_checked",
    "read_state_dict",
    "register_model",
]
