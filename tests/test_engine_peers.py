"""The peer systems in the one pipeline: auxiliary losses, Adam, the pretrained part's learning rate,
evaluation at another output stride, and models that take no ``down_ratio``."""

import pytest
import torch

from dla.commands.evaluate import evaluate_checkpoint
from dla.engine.config_loader import load_config
from dla.engine.optimizer import build_optimizer, parameter_groups
from dla.engine.step import weighted_loss
from dla.engine.trainer import train
from dla.errors import DLAError
from dla.models import AuxOutput, create_model
from dla.tasks.segmentation import SegmentationTask, evaluated_at
from engine_runs import quick_config, squares


def config(out_dir, *overrides):
    return quick_config(out_dir, "data.batch_size=2", "optim.epochs=1", "optim.max_iterations=2", *overrides)


def test_auxiliary_logits_weigh_aux_weight():
    criterion = SegmentationTask().criterion(load_config(None), squares()[0].meta, None)
    target = torch.randint(0, 3, (1, 8, 8))
    main, aux = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    expected = 0.7 * criterion(main, target) + 0.3 * criterion(aux, target)
    assert torch.allclose(weighted_loss(criterion, AuxOutput(main, aux), target, 0.3), expected)
    assert torch.equal(weighted_loss(criterion, main, target, 0.3), criterion(main, target))


def test_adam_and_a_fifth_of_the_lr_for_the_pretrained_densenet():
    model = create_model("ladder_densenet121", num_classes=3)
    cfg = load_config(None, ["optim.optimizer=adam", "optim.lr=5.0e-4", "optim.backbone_lr_factor=0.2"])
    groups = parameter_groups(model, SegmentationTask(), cfg.optim.lr, cfg.optim.backbone_lr_factor)
    optimizer = build_optimizer(groups, cfg.optim)
    assert isinstance(optimizer, torch.optim.Adam)
    assert [g["lr"] for g in optimizer.param_groups] == [5.0e-4, pytest.approx(1.0e-4)]
    assert len(optimizer.param_groups[1]["params"]) == len(list(model.backbone.parameters()))


def test_ladder_densenet_trains_with_its_auxiliary_loss(tmp_path):
    metrics = train(
        config(tmp_path / "run", "model.name=ladder_densenet121", "optim.optimizer=adam", "optim.lr=5.0e-4"), datasets=squares(4)
    )
    assert 0.0 <= metrics["miou"] <= 1.0


def test_deeplabv3_is_evaluated_at_output_stride_8_and_keeps_16(tmp_path):
    cfg = config(
        tmp_path / "run",
        "model.name=deeplabv3_resnet50",
        "model.kwargs={output_stride: 16}",
        "data.dataset=synthetic",
        "data.options={length: 2, height: 32, width: 32}",
        "data.crop_size=[32, 32]",
    )
    train(cfg)
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.pt")
    at_8 = evaluate_checkpoint(checkpoint, workers=0, output_stride=8)
    at_16 = evaluate_checkpoint(checkpoint, workers=0)
    assert at_8["eval"]["output_stride"] == 8 and at_16["eval"]["output_stride"] is None
    model = create_model("deeplabv3_resnet50", num_classes=2)
    with evaluated_at(model, 8):
        assert model.output_stride == 8 and model.classifier[0].convs[1][0].dilation == (12, 12)
    assert model.output_stride == 16 and model.classifier[0].convs[1][0].dilation == (6, 6)
    with pytest.raises(DLAError, match="cannot change its output stride"), evaluated_at(create_model("dla34up"), 8):
        pass


def test_a_model_without_down_ratio_is_named_with_what_it_refused(tmp_path):
    cfg = config(tmp_path / "run", "model.name=dfanet_b", "model.down_ratio=4")
    with pytest.raises(DLAError, match="model dfanet_b cannot be built with"):
        train(cfg, datasets=squares(4))
    with pytest.raises(DLAError, match="eval.output_stride does not apply"):
        load_config(None, ["task=classification", "eval.output_stride=8"])
