"""Capacity planning calibrated by measurement: ``ragfleet bench calibrate`` measures this
machine (:mod:`ragfleet.plan.measure`), ``ragfleet plan`` sizes a deployment from it
(:func:`plan`, pure)."""

from ragfleet.plan.calibration import Calibration, SpecCalibration
from ragfleet.plan.fit import ScalingFit
from ragfleet.plan.model import Deployment, Plan, Workload, plan, predict_p99
from ragfleet.plan.tails import Dist, FanOut, Queue, Shape, erlang_c, expected_max_uniform

__all__ = [
    "Calibration",
    "Deployment",
    "Dist",
    "FanOut",
    "Plan",
    "Queue",
    "ScalingFit",
    "Shape",
    "SpecCalibration",
    "Workload",
    "erlang_c",
    "expected_max_uniform",
    "plan",
    "predict_p99",
]
