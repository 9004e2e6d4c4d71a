"""``dla models``'s counts, cached per code version: equal to exact counting, used without building a model,
counted again for another code version, a broken file or a model outside the package."""

import shutil

import pytest
import torch

from dla import model_facts
from dla.cli import main
from dla.complexity import count_macs, count_params
from dla.model_facts import PACKAGE, FactsCache, fingerprint
from dla.models import create_model
from engine_runs import engine_train_tiny  # noqa: F401  (registers a model outside the dla package)


def refuse_to_build(monkeypatch):
    def build(*args, **kwargs):
        raise AssertionError("a model was built, the cache was not used")

    monkeypatch.setattr(model_facts, "create_model", build)


@pytest.mark.parametrize("name, size", [("dla46x_c", (224, 224)), ("dla34up", (96, 128)), ("resnet18", (1024, 1024))])
def test_cached_counts_equal_exact_counting(tmp_path, monkeypatch, name, size):
    """What a later call reads from the cache is what ``dla models`` counted before it had one."""
    with torch.device("meta"):
        model = create_model(name).eval()
    exact = count_params(model), count_macs(model, (1, 3, *size))
    cache = FactsCache(tmp_path)
    facts = cache.facts(name, [size])
    cache.save()
    refuse_to_build(monkeypatch)
    cached = FactsCache(tmp_path).facts(name, [size])
    assert cached == facts and (cached.params, cached.macs[f"{size[0]}x{size[1]}"]) == exact
    assert cached.paper_name == model.pretrained_cfg.paper_name


def test_sizes_are_added_to_an_entry(tmp_path, monkeypatch):
    cache = FactsCache(tmp_path)
    cache.facts("dla46_c", [(64, 64)])
    assert set(cache.facts("dla46_c", [(96, 96)]).macs) == {"64x64", "96x96"}
    cache.save()
    refuse_to_build(monkeypatch)
    assert set(FactsCache(tmp_path).facts("dla46_c", [(64, 64), (96, 96)]).macs) == {"64x64", "96x96"}


def test_another_code_version_counts_again_and_replaces_the_file(tmp_path, monkeypatch):
    cache = FactsCache(tmp_path)
    cache.facts("dla46_c", [(64, 64)])
    cache.save()
    monkeypatch.setattr(model_facts, "fingerprint", lambda: "another")
    other = FactsCache(tmp_path)
    assert other.entries == {}
    other.facts("dla46_c", [(64, 64)])
    other.save()
    assert [path.name for path in tmp_path.iterdir()] == ["models-another.json"]


def test_the_fingerprint_follows_the_source(tmp_path):
    copy = shutil.copytree(PACKAGE, tmp_path / "dla", ignore=shutil.ignore_patterns("__pycache__"))
    assert fingerprint(copy) == fingerprint()
    (copy / "complexity.py").write_text((copy / "complexity.py").read_text() + "\n# an edit\n")
    assert fingerprint(copy) != fingerprint()


def test_a_broken_file_is_counted_again_and_a_model_outside_the_package_never_cached(tmp_path):
    cache = FactsCache(tmp_path)
    cache.path.write_text("{not json")
    cache = FactsCache(tmp_path)
    assert cache.entries == {}
    assert cache.facts("engine_train_tiny", [(32, 32)]).macs["32x32"] == count_macs(engine_train_tiny(), (1, 3, 32, 32))
    assert not cache.changed and "engine_train_tiny" not in cache.entries


def test_an_unwritable_folder_is_done_without(tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    cache = FactsCache(blocked)
    facts = cache.facts("dla46_c", [(64, 64)])
    cache.save()  # no error: the counts are right, only not kept
    assert facts.params == count_params(create_model("dla46_c"))


def test_dla_models_answers_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DLA_CACHE_DIR", str(tmp_path))
    assert main(["models", "dla46*", "--input-size", "96"]) == 0
    counted = capsys.readouterr().out
    refuse_to_build(monkeypatch)
    assert main(["models", "dla46*", "--input-size", "96"]) == 0
    assert capsys.readouterr().out == counted
