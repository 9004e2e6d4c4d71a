"""The config schema: defaults, files, overrides, inheritance, errors, and the shipped configs."""

from pathlib import Path

import pytest
import yaml

from dla.config import Config
from dla.engine.config_loader import config_differences, config_keys, dump_config, load_config
from dla.errors import DLAError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def write(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def test_defaults_and_derived_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg.to_dict()["model"] == {
        "name": "dla34up",
        "down_ratio": None,
        "pretrained_backbone": None,
        "kwargs": {},
        "sync_bn": True,
    }
    assert cfg.optim.lr == 0.01 and cfg.optim.schedule == "step" and cfg.optim.step_epochs == [800]
    assert cfg.data.dataset == "synthetic" and cfg.data.root is None
    assert cfg.out_dir == str(tmp_path / "runs" / "dla34up")  # no file: named after the model
    named = write(tmp_path / "my_recipe.yaml", {"seed": 3})
    assert load_config(str(named)).out_dir == str(tmp_path / "runs" / "my_recipe")


def test_file_then_overrides(tmp_path):
    path = write(tmp_path / "c.yaml", {"optim": {"lr": 0.02, "schedule": "poly"}, "data": {"batch_size": 4}})
    cfg = load_config(str(path), ["optim.lr=0.5", "eval.scales=[0.5, 1.0]", "model.kwargs.width=3", "optim.grad_clip=1"])
    assert cfg.optim.lr == 0.5 and cfg.optim.schedule == "poly"  # override beats file, file beats default
    assert cfg.data.batch_size == 4 and cfg.optim.momentum == 0.9
    assert cfg.eval.scales == [0.5, 1.0]
    assert cfg.model.kwargs == {"width": 3}  # free-form mappings take any key
    assert cfg.optim.grad_clip == 1.0 and isinstance(cfg.optim.grad_clip, float)  # int accepted as a number
    assert load_config(None, ["model.pretrained_backbone=null"]).model.pretrained_backbone is None


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"optim": {"lrr": 0.1}}, "did you mean 'optim.lr'"),
        ({"data": {"batchsize": 2}}, "did you mean 'data.batch_size'"),
        ({"lr": 0.1}, "did you mean 'optim.lr'"),  # right key, wrong section
        ({"optimiser": {"lr": 0.1}}, "did you mean 'optim'"),
        ({"optimizer": "adam"}, "did you mean 'optim.optimizer'"),
    ],
)
def test_unknown_key_in_file_names_it_and_suggests(tmp_path, settings, expected):
    path = write(tmp_path / "c.yaml", settings)
    with pytest.raises(DLAError, match=expected) as error:
        load_config(str(path))
    assert str(path) in str(error.value)


def test_unknown_key_in_override_suggests():
    with pytest.raises(DLAError, match=r"--set eval.scale=\[1.0\].*unknown config key 'eval.scale'.*did you mean 'eval.scales'"):
        load_config(None, ["eval.scale=[1.0]"])


@pytest.mark.parametrize(
    "override, expected",
    [
        ("data.batch_size=eight", "data.batch_size must be an integer"),
        ("data.batch_size=2.5", "data.batch_size must be an integer"),
        ("data.flip=3", "data.flip must be true or false"),
        ("seed=true", "seed must be an integer"),
        ("data.batch_size=1e3", "write the integer in digits, 1000"),  # 1e3 is a float (optim.lr=1e-4 is a number)
        ("optim.schedule=cosine", "one of 'step', 'poly'"),
        ("model.down_ratio=3", "one of 2, 4, 8, 16"),
        ("eval.scales=1.0", "eval.scales must be a list of numbers"),
        ("optim.class_weights=[1, a]", "a list of numbers or one of 'median_freq', 'inverse_log' or null"),
        ("model=dla34up", "model must be a mapping"),
        ("data.crop_size=[32]", r"data.crop_size must be \[height, width\]"),
        ("data.batch_size=0", "data.batch_size must be at least 1"),
        ("optim.lr", "not key=value"),
    ],
)
def test_wrong_values_are_errors(override, expected):
    with pytest.raises(DLAError, match=expected):
        load_config(None, [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(DLAError, match="nope.yaml not found"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: [}\n")
    with pytest.raises(DLAError, match="not valid YAML"):
        load_config(str(bad))
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(DLAError, match="must hold a mapping"):
        load_config(str(listing))


def test_base_files_and_cycles(tmp_path):
    write(tmp_path / "base.yaml", {"optim": {"lr": 0.02, "epochs": 7}, "data": {"batch_size": 3}})
    child = write(tmp_path / "child.yaml", {"base": "base.yaml", "optim": {"lr": 0.5}})
    cfg = load_config(str(child))
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.data.batch_size) == (0.5, 7, 3)
    assert cfg.out_dir.endswith("child")
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(DLAError, match="cycle"):
        load_config(str(tmp_path / "a.yaml"))


def test_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("DLA_DATA_ROOT", raising=False)
    with pytest.raises(DLAError, match=r"DLA_DATA_ROOT"):
        load_config(None, ["data.dataset=camvid"])
    monkeypatch.setenv("DLA_DATA_ROOT", str(tmp_path / "data"))
    assert load_config(None, ["data.dataset=camvid"]).data.root == str(tmp_path / "data" / "camvid")
    monkeypatch.chdir(tmp_path)
    assert load_config(None, ["data.dataset=camvid", "data.root=here/cv"]).data.root == str(tmp_path / "here" / "cv")


def test_dump_and_reload_is_identity(tmp_path):
    cfg = load_config(None, ["optim.lr=0.5", "model.kwargs={a: 1}", "eval.window=[64, 64]"])
    dump_config(cfg, tmp_path / "config.yaml")
    assert load_config(str(tmp_path / "config.yaml")) == cfg


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path, monkeypatch, tmp_path):
    monkeypatch.setenv("DLA_DATA_ROOT", str(tmp_path))
    cfg = load_config(str(path))
    assert cfg.out_dir.endswith(path.stem)


def test_shipped_configs_follow_the_paper(monkeypatch, tmp_path):
    monkeypatch.setenv("DLA_DATA_ROOT", str(tmp_path))
    camvid = load_config(str(ROOT / "configs" / "camvid_dla34_8s.yaml"))
    assert camvid.model.down_ratio == 8
    assert (camvid.optim.schedule, camvid.optim.lr, camvid.optim.step_epochs, camvid.optim.gamma) == ("step", 0.01, [800], 0.1)
    assert (camvid.data.rotation, camvid.data.scale) == (10.0, [0.5, 2.0])
    city = load_config(str(ROOT / "configs" / "cityscapes_dla102.yaml"))
    assert city.model.name == "dla102up"
    assert (city.optim.schedule, city.optim.power, city.optim.epochs) == ("poly", 0.9, 500)
    assert (city.data.batch_size, city.data.crop_size) == (16, [864, 864])
    voc = load_config(str(ROOT / "configs" / "voc_deeplabv3_resnet101.yaml"))  # DeepLabv3: train at 16, evaluate at 8
    assert (voc.model.kwargs["output_stride"], voc.eval.output_stride, voc.optim.lr) == (16, 8, 0.007)
    assert voc.eval.scales == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75] and voc.eval.flip
    ladder = load_config(str(ROOT / "configs" / "cityscapes_ladder_densenet169.yaml"))
    assert (ladder.optim.optimizer, ladder.optim.lr, ladder.optim.power) == ("adam", 5.0e-4, 1.5)
    assert (ladder.optim.backbone_lr_factor, ladder.optim.aux_weight, ladder.data.batch_size) == (0.2, 0.3, 2)
    peers = [
        load_config(str(ROOT / "configs" / f"camvid_cpu20_{name}.yaml"))
        for name in ("dla34", "deeplabv3_resnet50", "ladder_densenet121", "dfanet_a")
    ]
    for cfg in peers:  # the CPU comparison: one budget, only the model differs
        assert {k: v for k, v in cfg.to_dict().items() if k not in ("model", "out_dir")} == {
            k: v for k, v in peers[0].to_dict().items() if k not in ("model", "out_dir")
        }


def test_every_key_is_documented():
    readme = (ROOT / "configs" / "README.md").read_text()
    undocumented = [key for key in config_keys() if f"`{key}`" not in readme]
    assert not undocumented


def test_task_default_keys_read_from_a_hand_built_config_are_named():
    from dla.config import Config, pair, required

    with pytest.raises(DLAError, match="data.crop_size is null: build the config with dla.engine.load_config"):
        pair(Config().data.crop_size, "data.crop_size")
    with pytest.raises(DLAError, match=r"eval.window must be two values .*got \[64\]"):
        pair([64], "eval.window")
    assert pair([360, 480], "data.crop_size") == (360, 480) and required(0.0, "x") == 0.0


def test_config_differences_name_sections_key_by_key_and_free_form_mappings_whole():
    """Every free-form mapping field (``model.kwargs``, ``data.options``, ``data.val_options``) is one key."""
    a, b = Config(), Config()
    b.model.kwargs, b.data.val_options, b.optim.lr = {"backbone": "dla46_c"}, {"length": 3}, 0.5
    assert config_differences(a, b) == ["data.val_options", "model.kwargs", "optim.lr"]
    assert config_differences(a, Config()) == []
