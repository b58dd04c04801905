"""The GPU guard and the provenance every page prints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modelnotes import provenance

ROOT = Path(__file__).resolve().parents[1]


def test_guard_fails_without_cuda(monkeypatch):
    monkeypatch.setenv("MODELNOTES_REQUIRE_GPU", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(provenance.GPURequiredError, match="MODELNOTES_REQUIRE_GPU"):
        provenance.measurement_device()


def test_guard_off_falls_back_to_cpu(monkeypatch):
    monkeypatch.setenv("MODELNOTES_REQUIRE_GPU", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert provenance.measurement_device() == torch.device("cpu")
    info = provenance.collect()
    assert not info.measured_on_gpu
    assert info.device == "CPU only (no CUDA)"


def _load_conf(require_gpu: str) -> subprocess.CompletedProcess:
    """Execute docs/conf.py the way Sphinx does, with CUDA hidden from torch."""
    env = dict(os.environ, MODELNOTES_REQUIRE_GPU=require_gpu, CUDA_VISIBLE_DEVICES="")
    code = ("import runpy; c = runpy.run_path('docs/conf.py'); "
            "print('ANNOUNCEMENT' if 'announcement' in c['html_theme_options'] else 'NONE'); "
            "print(c['html_theme_options']['extra_footer'])")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_docs_build_refuses_to_start_without_cuda_when_gpu_required():
    result = _load_conf("1")
    assert result.returncode != 0
    assert "GPURequiredError" in result.stderr


def test_cpu_build_carries_the_preview_banner_and_provenance_footer():
    result = _load_conf("0")
    assert result.returncode == 0, result.stderr
    banner, footer = result.stdout.splitlines()[:2]
    assert banner == "ANNOUNCEMENT"
    for fact in ("CPU only (no CUDA)", f"torch {torch.__version__}", "transformers", "torchvision",
                 "commit"):
        assert fact in footer


def test_commit_override(monkeypatch):
    monkeypatch.setenv("MODELNOTES_COMMIT", "abc123")
    assert provenance.collect().commit == "abc123"


def test_sentence_names_every_version():
    info = provenance.collect()
    sentence = info.sentence()
    for value in (info.torch, info.transformers, info.torchvision, info.date, info.commit):
        assert value in sentence
