"""Model families and the registry. Importing a family file registers its variants."""

from . import dla, dla_up, resnet, deeplabv3, densenet, ladder_densenet, dfanet  # noqa: F401, I001  (registers the variants, DLA first)
from ._features import FeatureInfo, FeatureListNet
from ._hub import hub_folder, is_hub_name
from ._outputs import AuxOutput
from ._paper import PaperFigures, paper_figures
from ._pretrained import PretrainedCfg, get_pretrained_cfg, load_pretrained, load_state_dict_checked, read_state_dict
from ._registry import create_model, list_models, model_entrypoint, register_model
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
    "PaperFigures",
    "PretrainedCfg",
    "ResNet",
    "create_model",
    "get_pretrained_cfg",
    "hub_folder",
    "is_hub_name",
    "list_models",
    "load_pretrained",
    "load_state_dict_checked",
    "model_entrypoint",
    "paper_figures",
    "read_state_dict",
    "register_model",
]
