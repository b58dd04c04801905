"""`modelnotes params`: the exact count from a config, as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import ENV, run
from modelnotes.cli import main


def as_json(capsys, *args: str) -> dict:
    assert main(["params", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name, total", [("t5-small", 60_506_624),
                                         ("deepseek-v3", 671_026_404_352),
                                         ("qwen3-0.6b", 596_049_920),
                                         ("resnet18", 11_689_512)])
def test_exact_totals_without_the_check(capsys, name, total):
    report = as_json(capsys, name, "--no-check")
    assert report["total"] == total
    assert report["pytorch"] is None and report["difference"] is None


def test_json_keys_and_nested_components(capsys):
    report = as_json(capsys, "deepseek-v3", "--no-check")
    assert {"model", "total", "pytorch", "active", "embedding", "non_embedding", "bytes",
            "components"} <= report.keys()
    assert report["model"] == "deepseek-v3"
    assert report["active"] == 37_552_282_624
    assert report["bytes"]["bf16"] == 2 * report["total"]
    components = report["components"]
    assert components["total"] == report["total"]
    assert sum(c["total"] for c in components["children"]) == report["total"]
    assert any("children" in c for c in components["children"])  # nested, not flat


def test_the_check_agrees_with_pytorch(capsys):
    report = as_json(capsys, "t5-small")
    assert report["pytorch"] == report["total"] == 60_506_624
    assert report["difference"] == 0


def test_human_output(capsys):
    assert main(["params", "qwen3-30b-a3b", "--no-check"]) == 0
    out = capsys.readouterr().out
    assert "30,532,122,624" in out                      # total
    assert "Active per token:" in out and "3,353,032,704" in out
    assert "Embedding:" in out and "Non-embedding:" in out
    for dtype in ("fp32", "bf16", "fp8", "fp4"):
        assert dtype in out
    assert "GiB" in out and " GB" in out
    assert "\n  model" in out and "\n    embed_tokens" in out  # nested components indented
    assert "PyTorch (meta device)" not in out


def test_small_models_show_megabytes(capsys):
    assert main(["params", "course-lstm", "--no-check"]) == 0
    out = capsys.readouterr().out
    # 895,498 fp32 weights are 3,581,992 bytes: 3.58 MB, 3.42 MiB, not "0.00 GB"
    assert "3.58 MB" in out and "3.42 MiB" in out and " GB" not in out


def test_human_output_has_the_check_line():
    result = run("params", "resnet18")
    assert result.returncode == 0, result.stderr
    assert "PyTorch (meta device): 11,689,512, difference 0" in result.stdout


def test_a_config_file(tmp_path, capsys):
    config = {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "vocab_size": 1000,
              "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
              "tie_word_embeddings": False, "max_position_embeddings": 128}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    report = as_json(capsys, str(path))
    assert report["pytorch"] == report["total"] > 0
    # by hand: embed + lm_head + 2 x (2 norms + q,k,v,o + q/k norms + 3 mlp) + final norm
    attn = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 2 * 16
    layer = 2 * 64 + attn + 3 * 64 * 128
    assert report["total"] == 2 * 1000 * 64 + 2 * layer + 64


def test_a_transformers_config_file(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    config = transformers.Qwen3Config(vocab_size=500, hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=1, num_attention_heads=4,
                                      num_key_value_heads=1, head_dim=8).to_dict()
    config["architectures"] = ["Qwen3ForCausalLM"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    report = as_json(capsys, str(path))
    assert report["pytorch"] == report["total"] > 0


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {"malformed": '{"model_type": "qwen3",', "unsupported": '{"model_type": "mamba"}',
             "missing-field": '{"model_type": "qwen3", "vocab_size": 10}',
             "not-an-object": "[1, 2]"}
    out = {}
    for stem, text in files.items():
        out[stem] = tmp_path / f"{stem}.json"
        out[stem].write_text(text)
    return out


@pytest.mark.parametrize("case, needle", [("unknown-name", "unknown model"),
                                          ("missing-file", "cannot read"),
                                          ("malformed", "not valid JSON"),
                                          ("unsupported", "unsupported model_type 'mamba'"),
                                          ("missing-field", "config has no"),
                                          ("not-an-object", "JSON object")])
def test_errors_are_one_line_and_exit_2(tmp_path, case, needle):
    files = _bad_files(tmp_path)
    target = {"unknown-name": "gpt-5", "missing-file": str(tmp_path / "nosuch.json"),
              **{k: str(v) for k, v in files.items()}}[case]
    result = run("params", target, "--no-check")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("modelnotes: error: ")
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_no_check_does_not_import_torch():
    code = ("import sys, contextlib, io\n"
            "from modelnotes.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['params', 'deepseek-v3', '--no-check']) == 0\n"
            "    assert main(['params', 'llama4-maverick', '--no-check', '--json']) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert 'transformers' not in sys.modules, 'transformers was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=ENV)
    assert result.returncode == 0, result.stderr
