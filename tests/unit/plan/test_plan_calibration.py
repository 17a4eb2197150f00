"""The calibration file: a round trip keeps every number; a bad file is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragfleet.errors import ConfigError
from ragfleet.plan.calibration import Calibration, default_calibration


def test_json_round_trip(cal: Calibration, tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    cal.save(path)
    back = Calibration.load(path)
    assert back == cal
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "does not hold a calibration"),
        ('{"schema": 99}', "schema 99 is not 1"),
        ('{"schema": 1, "specs": []}', "malformed"),
    ],
)
def test_bad_files_are_config_errors(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "cal.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        Calibration.load(path)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bench calibrate"):
        Calibration.load(tmp_path / "nope.json")


def test_truncated_field_is_malformed(cal: Calibration, tmp_path: Path) -> None:
    raw = cal.to_json()
    del raw["specs"][0]["points"][0]["p99_ms"]
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="malformed"):
        Calibration.load(path)


def test_unknown_spec_lists_the_known(cal: Calibration) -> None:
    with pytest.raises(ConfigError, match=r"\['flat', 'hnsw32'\]"):
        cal.spec("ivf9")


def test_the_shipped_calibration_loads() -> None:
    shipped = default_calibration()
    assert {"flat", "hnsw32"} <= {s.spec for s in shipped.specs}
    assert shipped.encoder is not None
    for s in shipped.specs:
        assert len(s.points) >= 2 and s.ram_bytes_per_vector > 0
