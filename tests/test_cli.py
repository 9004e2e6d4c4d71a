"""The ``dla`` command line."""

import subprocess
import sys

from dla.cli import main


def test_models_table_lists_matching_models_with_counts(capsys):
    assert main(["models", "dla46*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["name", "paper"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"dla46_c", "dla46x_c"}
    assert rows["dla46_c"][1:] == ["DLA-46-C", "Bottleneck", "1.31", "0.574"]
    assert rows["dla46x_c"][1:] == ["DLA-X-46-C", "Split", "1.08", "0.533"]


def test_models_markdown_format(capsys):
    assert main(["models", "dla34", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == "| dla34 | DLA-34 | Basic | 15.78 | 3.060 |"


def test_unknown_pattern_is_a_clear_error_without_traceback():
    result = subprocess.run([sys.executable, "-m", "dla", "models", "vgg*"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("dla: error: no model matches 'vgg*'")
    assert "Traceback" not in result.stderr
