"""Each default is defined once: the CLI's flags, the Python API and an experiment YAML's sections agree.

The flags' defaults are read from the argparse parsers themselves (``--help`` is never parsed), the API's
from the option dataclasses, the YAML's from a file that sets nothing in ``export:`` or ``bench:``.
"""

from __future__ import annotations

import argparse
import typing

import pytest
from experiment_helpers import write_yaml

from edgeiqa.bench.cli_entry import bench_options_from_args
from edgeiqa.bench.harness import DatasetSpec
from edgeiqa.bench.spec import DECODERS, BenchOptions
from edgeiqa.cli import build_parser
from edgeiqa.configs import field_default
from edgeiqa.experiment import ExperimentConfig
from edgeiqa.export.cli_entry import export_options_from_args
from edgeiqa.export.options import ExportOptions, Int8Settings, Tolerances
from edgeiqa.runtime.decode import DecoderName


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(parser: argparse.ArgumentParser, dest: str) -> argparse.Action:
    return next(a for a in parser._actions if a.dest == dest)


@pytest.fixture(scope="module")
def yaml_cfg(tmp_path_factory) -> ExperimentConfig:
    return ExperimentConfig.load(write_yaml(tmp_path_factory.mktemp("cfg") / "exp.yaml", {"name": "defaults"}))


def test_bench_flags_the_api_and_the_bench_section_share_one_set_of_defaults(yaml_cfg) -> None:
    bench = _subparsers()["bench"]
    api = BenchOptions()
    args = bench.parse_args(["model.onnx", "--out", "r.json"])
    assert bench_options_from_args(args) == api == yaml_cfg.bench.options() == ExperimentConfig().bench.options()
    assert (bench.get_default("min_seconds"), bench.get_default("warmup")) == (api.min_seconds, api.warmup)
    assert (yaml_cfg.bench.min_seconds, yaml_cfg.bench.warmup) == (api.min_seconds, api.warmup)
    assert bench.get_default("split") == yaml_cfg.bench.split == field_default(DatasetSpec, "split")
    assert bench.get_default("dataset") == field_default(DatasetSpec, "name")


def test_export_flags_the_api_and_the_export_section_share_one_set_of_defaults(yaml_cfg) -> None:
    export = _subparsers()["export"]
    args = export.parse_args(["ckpt", "--format", "onnx", "--precision", "int8", "--out", "x"])
    assert export_options_from_args(args) == ExportOptions()
    assert all(yaml_cfg.export.options_for(a) == ExportOptions() for a in yaml_cfg.export.artifacts)
    assert yaml_cfg.export.calibration.settings() == Int8Settings() and yaml_cfg.export.tolerances == Tolerances()
    n_images = Int8Settings().n_images
    assert export.get_default("calib_n") == yaml_cfg.export.calibration.n_images == n_images
    assert _subparsers()["build-engine"].get_default("calib_n") == n_images
    assert export.get_default("calib_split") == yaml_cfg.export.calibration.split
    assert _subparsers()["build-engine"].get_default("max_side_factor") == ExportOptions().max_side_factor


@pytest.mark.parametrize("command", ["predict", "speed", "bench"])
def test_every_decoder_flag_offers_the_runtimes_decoders(command: str) -> None:
    decoder = _option(_subparsers()[command], "decoder")
    assert tuple(decoder.choices) == DECODERS == typing.get_args(DecoderName)
    assert decoder.default == BenchOptions().decoder
