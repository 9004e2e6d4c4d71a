"""The ``dla`` command line."""

import subprocess
import sys

import pytest

from dla.cli import build_parser, main


def test_models_table_lists_matching_models_with_counts(capsys):
    assert main(["models", "dla46*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["name", "paper"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"dla46_c", "dla46x_c"}
    # measured parameters and MACs, then Table 2's (params, FMAs at 224x224) and ours at the paper's size
    assert rows["dla46_c"][1:] == ["DLA-46-C", "Bottleneck", "1.31", "0.574", "1.3", "0.58", "at", "224x224", "0.574"]
    assert rows["dla46x_c"][1:] == ["DLA-X-46-C", "Split", "1.08", "0.533", "1.1", "0.53", "at", "224x224", "0.533"]


def test_models_markdown_format(capsys):
    assert main(["models", "dla34", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == "| dla34 | DLA-34 | Basic | 15.78 | 3.060 |  |  |  |"


def test_models_table_puts_the_papers_figures_next_to_ours(capsys):
    assert main(["models", "dfanet_a", "--input-size", "64"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[-3:-1] == ["at", "1024x1024"]  # Table 5: 3.4 GMACs at 1024x1024
    assert float(row[-1]) == pytest.approx(float(row[-4]), rel=0.1)


def test_unknown_pattern_is_a_clear_error_without_traceback():
    result = subprocess.run([sys.executable, "-m", "dla", "models", "vgg*"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("dla: error: no model matches 'vgg*'")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["eval", "run/last.pt"], ["baseline", "--dataset", "bsds500"]])
def test_out_names_the_scores_file_as_in_every_other_command(command):
    parser = build_parser()
    assert parser.parse_args([*command, "--out", "scores.json"]).output == "scores.json"
    assert parser.parse_args([*command, "--output", "scores.json"]).output == "scores.json"


def test_starting_the_command_line_leaves_scipy_unloaded():
    """scipy's submodules (about 0.2 s) load where the boundary benchmark and .mat readers first use them."""
    heavy = ("scipy.sparse", "scipy.ndimage", "scipy.io", "scipy.optimize")
    code = f"import sys, dla.cli; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
