"""The `modelnotes` command as a user types it."""

import json

import pytest

from clirun import run
from modelnotes.catalogue import names
from modelnotes.cli import main


def test_help_lists_the_subcommands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("list", "summary", "provenance"):
        assert command in result.stdout


def test_list_prints_every_model(capsys):
    assert main(["list"]) == 0
    printed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == names()


def test_unknown_model_is_one_line_and_exit_2():
    result = run("summary", "gpt-5")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "known models:" in result.stderr


def test_summary_reports_the_unique_count(capsys):
    assert main(["summary", "t5-small", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "Unique parameters (tied weights once): 60,506,624" in out


@pytest.mark.parametrize("bad", [["summary"], ["summary", "vgg16", "--depth", "x"], ["frobnicate"]])
def test_bad_arguments_exit_2(bad):
    result = run(*bad)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_provenance_json():
    result = run("provenance", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert {"device", "driver", "cuda", "torch", "transformers", "torchvision", "date",
            "commit"} <= set(data)
