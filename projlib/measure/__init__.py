"""Honest cost accounting: energy and carbon (measured or labelled estimates), MACCs, memory,
and compaction of structurally sparse networks (docs/METHOD.md §5, §6; docs/ARCHITECTURE.md)."""

from projlib.measure.compact import compact
from projlib.measure.inference import InferenceResult, inference_comparison, measure_inference
from projlib.measure.maccs import CostReport, LayerCost, cost_report, thop_maccs, torch_flop_maccs
from projlib.measure.meter import EnergyMeter, MeterConfig, Window, probe_backends
from projlib.measure.structure import Select, plan_model
from projlib.measure.types import (
    BackendStatus,
    DeviceEnergy,
    DeviceIdle,
    EnergyResult,
    IdleBaseline,
)

__all__ = [
    "BackendStatus", "CostReport", "DeviceEnergy", "EnergyMeter", "EnergyResult", "LayerCost",
    "MeterConfig", "Select", "Window", "compact", "cost_report", "plan_model", "probe_backends",
    "thop_maccs", "torch_flop_maccs",
    "DeviceIdle", "IdleBaseline", "InferenceResult", "inference_comparison", "measure_inference",
]
