"""`modelnotes formats`: the number formats table, one format in detail, JSON, errors."""

import json
import subprocess
import sys

import pytest

from clirun import ENV, run
from modelnotes.cli import main
from modelnotes.formats import BLOCK_FORMATS, FORMATS


def output(capsys, *args: str) -> str:
    assert main(["formats", *args]) == 0
    return capsys.readouterr().out


def test_table_has_every_format_once(capsys):
    lines = output(capsys).splitlines()
    first_words = [line.split()[0] for line in lines if line.strip()]
    for name in [*FORMATS, *BLOCK_FORMATS]:
        assert first_words.count(name) == 1, name
    row = next(line.split() for line in lines if line.startswith("fp8-e4m3fn "))
    assert row == ["fp8-e4m3fn", "8", "4", "3", "7", "448", "2^-6", "2^-9", "2^-3", "254"]
    row = next(line.split() for line in lines if line.startswith("e8m0 "))
    assert row == ["e8m0", "8", "8", "0", "127", "1.701e+38", "2^-127", "-", "1", "255"]
    row = next(line.split() for line in lines if line.startswith("fp64 "))
    assert row[5:] == ["1.798e+308", "2^-1022", "2^-1074", "2^-52", "2^64", "-", "2^53"]
    row = next(line.split() for line in lines if line.startswith("nvfp4 "))
    assert row == ["nvfp4", "fp4-e2m1", "fp8-e4m3fn", "16", "4.5", "+", "32", "per", "tensor"]


def test_one_format_in_detail(capsys):
    out = output(capsys, "fp8-e4m3fn")
    assert "S EEEE MMM" in out
    assert "448" in out and "0 1111 110  0x7E" in out          # max, its bits and code
    assert "0.001953125 = 2^-9" in out                          # min subnormal, exactly
    assert "NaN: 0x7F, 0xFF" in out and "no infinities" in out
    grid = [line for line in out.splitlines() if line.startswith("0x")]
    assert len(grid) == 16 and grid[-1].split() == [
        "0x78", "256", "288", "320", "352", "384", "416", "448", "NaN"]


def test_detail_of_unusual_formats(capsys):
    e8m0 = output(capsys, "e8m0")
    assert "EEEEEEEE" in e8m0 and "no zero" in e8m0 and "NaN: 0xFF" in e8m0
    assert "min subnormal" not in e8m0 and "2^(E-127)  for E = 0..254" in e8m0
    fnuz = output(capsys, "float8_e5m2fnuz")                    # torch's name works too
    assert "NaN: 0x80" in fnuz and "(no -0)" in fnuz and "eps            0.25 = 2^-2" in fnuz
    fp4 = output(capsys, "fp4-e2m1")
    assert "0x0          0       0.5         1       1.5         2         3         4" \
           "         6" in fp4 and "no NaN" in fp4
    int4 = output(capsys, "int4")
    assert "not a float" in int4.lower() and "-8 -7 -6 -5 -4 -3 -2 -1 0 1 2 3 4 5 6 7" in int4
    fp16 = output(capsys, "fp16")
    assert "infinities: +inf 0x7C00, -inf 0xFC00" in fp16 and "0x00 " not in fp16  # no grid
    nvfp4 = output(capsys, "nvfp4")
    assert "4.5 = 4 + 8/16, plus 32 bits per tensor" in nvfp4 and "amax / (448 * 6)" in nvfp4
    assert "2^(floor(log2(block amax)) - 8)" in output(capsys, "mxfp8-e4m3")


def test_json_lists_every_format(capsys):
    data = json.loads(output(capsys, "--json"))
    assert [d["name"] for d in data] == list(FORMATS)
    for d in data:
        assert {"name", "exponent_bits", "mantissa_bits", "bias", "max", "min_normal",
                "min_subnormal", "eps", "finite_values"} <= d.keys()
    by_name = {d["name"]: d for d in data}
    assert by_name["fp8-e5m2fnuz"]["eps"] == 0.25 and by_name["fp16"]["max"] == 65504
    assert by_name["e8m0"]["min_subnormal"] is None and by_name["e8m0"]["eps"] == 1
    assert by_name["fp64"]["finite_values"] == 2**64 - 2**53
    assert by_name["int8"]["exponent_bits"] is None and by_name["int8"]["max"] == 127
    assert "values" not in by_name["fp4-e2m1"]


def test_json_of_one_format_is_a_one_element_list_with_its_values(capsys):
    [fp8] = json.loads(output(capsys, "fp8-e5m2", "--json"))
    assert fp8["name"] == "fp8-e5m2" and fp8["bias"] == 15 and fp8["max"] == 57344
    assert len(fp8["values"]) == 256 and fp8["values"][0x7C] == "inf"
    assert fp8["values"][0xFC] == "-inf" and fp8["values"][0x7F] == "nan"
    assert fp8["values"][0x01] == 2**-16
    [block] = json.loads(output(capsys, "mxfp4", "--json"))
    assert block == {"name": "mxfp4", "kind": "block", "element": "fp4-e2m1", "scale": "e8m0",
                     "block_size": 32, "tensor_scale": None, "bits_per_element": 4.25,
                     "description": BLOCK_FORMATS["mxfp4"].description}


def test_json_is_strict():
    result = run("formats", "fp8-e4m3fn", "--json")
    assert result.returncode == 0
    json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))


@pytest.mark.parametrize("name", ["fp9", "float8"])
def test_unknown_name_is_one_line_and_exit_2(name):
    result = run("formats", name)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"modelnotes: error: unknown format '{name}'; known: fp64,")


def test_formats_does_not_import_torch():
    code = ("import sys; from modelnotes.cli import main; main(['formats', 'fp8-e4m3fn']); "
            "main(['formats', '--json']); assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=ENV)
    assert result.returncode == 0, result.stderr
