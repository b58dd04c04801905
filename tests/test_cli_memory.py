"""`modelnotes memory`: the prediction as text and JSON, --measure, and bad input."""

import json

import pytest
import torch

from clirun import run
from modelnotes import memory


def test_json_is_the_predictor_s_answer():
    result = run("memory", "gpt2", "--batch", "8", "--seq", "1024", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    p = memory.predict("gpt2", batch=8, seq=1024)
    assert out["peak_bytes"] == p.peak_bytes and out["peak_phase"] == p.peak_phase
    assert set(out["components"]) >= {"weights", "gradients", "optimizer", "activations",
                                       "other"}
    assert sum(out["components"].values()) == out["peak_bytes"]
    assert out["optimizer"] == "adamw" and out["attn"] == "sdpa"
    assert "measured_peak_bytes" not in out


def test_options_reach_the_prediction():
    args = ["gpt2", "--batch", "4", "--seq", "512", "--dtype", "bf16", "--optimizer", "sgd",
            "--checkpointing", "--json"]
    out = json.loads(run("memory", *args).stdout)
    p = memory.predict("gpt2", dtype="bf16", optimizer="sgd", batch=4, seq=512,
                       checkpointing=True)
    assert out["peak_bytes"] == p.peak_bytes
    assert out["components"]["optimizer"] == 0  # plain SGD keeps no state
    inference = json.loads(run("memory", "gpt2", "--mode", "inference", "--batch", "4",
                               "--seq", "512", "--json").stdout)
    assert inference["optimizer"] is None and list(inference["phases"]) == ["forward"]


@pytest.mark.parametrize("gpus, shard, reshard", [
    (1, "ddp", None), (8, "ddp", None), (2, "fsdp", True), (64, "fsdp", True),
    (8, "fsdp-no-reshard", False)])
def test_gpus_and_shard_reach_the_sharded_prediction(gpus, shard, reshard):
    from modelnotes.sharding import predict_sharded

    out = json.loads(run("memory", "gpt2", "--batch", "2", "--seq", "1024", "--gpus",
                         str(gpus), "--shard", shard, "--json").stdout)
    p = predict_sharded("gpt2", gpus=gpus, shard=shard.split("-")[0], batch=2, seq=1024,
                        reshard_after_forward=reshard is not False)
    assert (out["gpus"], out["shard"]) == (gpus, shard)
    assert out["peak_bytes"] == p.peak_bytes and out["components"] == p.components
    assert sum(out["components"].values()) == out["peak_bytes"]
    one = memory.predict("gpt2", batch=2, seq=1024).peak_bytes
    # DDP adds its buckets to the one-GPU step; FSDP2 shards weights and optimizer state
    assert (out["peak_bytes"] > one) if shard == "ddp" else (out["peak_bytes"] < one)


def test_sharded_text_says_per_gpu():
    result = run("memory", "gpt2", "--batch", "2", "--seq", "1024", "--gpus", "4",
                 "--shard", "fsdp")
    assert result.returncode == 0, result.stderr
    assert "predicted peak per GPU (rank 0 of 4)" in result.stdout
    assert "unsharded parameters" in result.stdout


def test_a_config_file(tmp_path):
    config = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4,
              "vocab_size": 1000, "n_positions": 128}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    out = json.loads(run("memory", str(path), "--batch", "2", "--seq", "64", "--json").stdout)
    assert out["peak_bytes"] == memory.predict(config, batch=2, seq=64).peak_bytes
    assert out["model"] == str(path)


def test_text_output_names_the_peak_and_its_parts():
    result = run("memory", "gpt2", "--batch", "8", "--seq", "1024")
    assert result.returncode == 0
    first = result.stdout.splitlines()[0]
    assert first.startswith("gpt2 train fp32 adamw B=8 S=1024: predicted peak 14.13 GiB")
    assert "in the backward" in first
    for part in ("weights", "gradients", "optimizer", "activations", "other"):
        assert f"\n  {part} " in result.stdout


@pytest.mark.parametrize("args, message", [
    (["gpt9", "--batch", "1", "--seq", "8"], "unknown model 'gpt9'"),
    (["gpt2", "--batch", "0", "--seq", "8"], "--batch: expected a positive integer, got 0"),
    (["gpt2", "--batch", "1", "--seq", "-3"], "--seq: expected a positive integer, got -3"),
    (["gpt2", "--batch", "1"], "gpt2 needs --seq"),
    (["gpt2", "--seq", "8"], "required: --batch"),
    (["gpt2", "--batch", "1", "--seq", "2048"], "longer than gpt2's 1024 learned positions"),
    (["resnet18", "--batch", "1", "--seq", "8"], "--seq does not apply"),
    (["resnet18", "--batch", "1", "--checkpointing"], "--checkpointing applies to training"),
    (["gpt2", "--batch", "1", "--seq", "8", "--mode", "inference", "--optimizer", "sgd"],
     "inference takes no --optimizer"),
    (["gpt2", "--batch", "1", "--seq", "8", "--dtype", "fp8"], "invalid choice: 'fp8'"),
    (["missing.json", "--batch", "1", "--seq", "8"], "missing.json"),
    (["gpt2", "--batch", "1", "--seq", "8", "--gpus", "4"], "--gpus 4 needs --shard"),
    (["gpt2", "--batch", "1", "--seq", "8", "--gpus", "0"], "--gpus: expected a positive"),
    (["gpt2", "--batch", "1", "--seq", "8", "--gpus", "2", "--shard", "none"],
     "--shard none is one GPU"),
    (["gpt2", "--batch", "1", "--seq", "8", "--mode", "inference", "--shard", "ddp"],
     "--shard applies to training"),
    (["gpt2", "--batch", "1", "--seq", "8", "--shard", "ddp", "--measure"], "torchrun"),
    (["bert-base-uncased", "--batch", "1", "--seq", "8", "--gpus", "2", "--shard", "fsdp"],
     "GPT-2 only"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run("memory", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_measure_without_a_gpu_says_so():
    result = run("memory", "gpt2", "--batch", "1", "--seq", "8", "--measure")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--measure needs a CUDA GPU" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_measure_adds_the_measured_peak():
    result = run("memory", "gpt2", "--batch", "4", "--seq", "512", "--json", "--measure")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["measured_peak_bytes"] > out["components"]["weights"]
    assert abs(out["error"]) <= 0.05  # the requirement
    assert out["error"] == pytest.approx(
        (out["peak_bytes"] - out["measured_peak_bytes"]) / out["measured_peak_bytes"])
