"""Facts the LSTM chapter (docs/part1/rnn.md) states about the course LSTM."""

import pytest
import torch
import torchinfo
from torch import nn

from modelnotes.catalogue import build, unique_parameter_count
from modelnotes.diagrams import lstm_blocks
from modelnotes.structure import trace_shapes

H, IN, CLASSES = 256, 100, 10


def layer_formula(n_in: int, h: int) -> int:
    """4h(in + h) + 8h: two weight matrices and two bias vectors of 4h."""
    return 4 * h * (n_in + h) + 8 * h


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build("course-lstm", "cpu")


def test_parameter_tensors_and_shapes(model):
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {
        "lstm.weight_ih_l0": (4 * H, IN), "lstm.weight_hh_l0": (4 * H, H),
        "lstm.bias_ih_l0": (4 * H,), "lstm.bias_hh_l0": (4 * H,),
        "lstm.weight_ih_l1": (4 * H, H), "lstm.weight_hh_l1": (4 * H, H),
        "lstm.bias_ih_l1": (4 * H,), "lstm.bias_hh_l1": (4 * H,),
        "fc.weight": (CLASSES, H), "fc.bias": (CLASSES,),
    }


def test_counts_per_layer_and_total(model):
    per_layer = [sum(p.numel() for n, p in model.lstm.named_parameters() if n.endswith(f"_l{k}"))
                 for k in range(2)]
    assert per_layer == [layer_formula(IN, H), layer_formula(H, H)] == [366_592, 526_336]
    assert sum(p.numel() for p in model.fc.parameters()) == 2_570
    assert unique_parameter_count(model) == 895_498


def test_single_bias_formula_misses_exactly_the_second_biases(model):
    one_bias = sum(4 * ((w + H) * H + H) for w in (IN, H)) + H * CLASSES + CLASSES
    second = sum(p.numel() for n, p in model.lstm.named_parameters() if n.startswith("bias_hh"))
    assert one_bias == 893_450
    assert unique_parameter_count(model) - one_bias == second == 2 * 4 * H == 2_048


def test_torchinfo_sees_one_leaf_lstm(model):
    summary = torchinfo.summary(model, input_data=torch.randn(50, 4, IN), device="cpu",
                                verbose=0)
    assert summary.total_params == 895_498
    lstm_rows = [row for row in summary.summary_list if isinstance(row.module, nn.LSTM)]
    assert len(lstm_rows) == 1 and lstm_rows[0].num_params == 892_928


def test_shapes_by_running(model):
    S, B = 50, 4
    x = torch.randn(S, B, IN)
    rows = {row.name: row.output_shape for row in trace_shapes(model, x, types=(nn.LSTM, nn.Linear))}
    assert rows == {"lstm": (S, B, H), "fc": (B, CLASSES)}
    with torch.no_grad():
        output, (h_n, c_n) = model.lstm(x)
    assert h_n.shape == c_n.shape == (2, B, H)
    assert torch.equal(output[-1], h_n[-1])


def test_hand_computed_steps_match_the_module(model):
    lstm = model.lstm
    S, B = 6, 3
    x = torch.randn(S, B, IN)

    def step(x_t, h_prev, c_prev, k):
        gates = (x_t @ getattr(lstm, f"weight_ih_l{k}").T + getattr(lstm, f"bias_ih_l{k}")
                 + h_prev @ getattr(lstm, f"weight_hh_l{k}").T + getattr(lstm, f"bias_hh_l{k}"))
        i, f, g, o = gates.chunk(4, dim=1)  # PyTorch's order i, f, g, o
        c_t = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_t), c_t

    with torch.no_grad():
        zeros = torch.zeros(B, H)
        states, top = [(zeros, zeros), (zeros, zeros)], []
        for t in range(S):
            inp = x[t]
            for k in range(2):
                states[k] = step(inp, *states[k], k)
                inp = states[k][0]
            top.append(inp)
        output, (h_n, c_n) = lstm(x)
    assert torch.allclose(torch.stack(top), output, atol=1e-6)
    assert torch.allclose(torch.stack([s[1] for s in states]), c_n, atol=1e-6)


def test_batch_first_input_is_silently_misread(model):
    with torch.no_grad():
        logits = model(torch.randn(4, 50, IN))  # (B, S, in) into a (S, B, in) module
    assert logits.shape == (50, CLASSES)


def test_diagram_blocks_follow_the_module(model):
    blocks = lstm_blocks(model)
    recurrent = [b for b in blocks if b.kind == "recurrent"]
    assert len(recurrent) == model.lstm.num_layers
    assert "W_ih 1024×100" in recurrent[0].detail and "W_ih 1024×256" in recurrent[1].detail
    assert blocks[0].detail == "(S, B, 100)"
    assert blocks[-1].kind == "head" and blocks[-1].detail == "256 → 10"


@pytest.mark.parametrize("make, expected", [
    (lambda: nn.LSTM(IN, H, 2, bidirectional=True, device="meta"),
     2 * (layer_formula(IN, H) + layer_formula(2 * H, H))),
    (lambda: nn.LSTM(IN, H, 2, proj_size=64, device="meta"),
     sum(4 * H * (w + 64) + 8 * H + 64 * H for w in (IN, 64))),
    (lambda: nn.GRU(IN, H, 2, device="meta"),
     sum(3 * H * (w + H) + 6 * H for w in (IN, H))),
])
def test_exercise_counts(make, expected):
    assert sum(p.numel() for p in make().parameters()) == expected


def test_exercise_counts_exact_values():
    assert 2 * (layer_formula(IN, H) + layer_formula(2 * H, H)) == 2_310_144
    assert sum(4 * H * (w + 64) + 8 * H + 64 * H for w in (IN, 64)) == 335_872
    assert sum(3 * H * (w + H) + 6 * H for w in (IN, H)) == 669_696
