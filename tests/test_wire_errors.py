"""wire.errors: the one ``key path: message`` form every loader, push and 422 uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wire.errors import describe, key_path, problems, read_yaml, shorten


class _Zone(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    dwell_s: int = Field(ge=0)


class _Camera(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    zones: list[_Zone]


class _Doc(BaseModel):
    cameras: list[_Camera]


def _error(model: type[BaseModel], raw: object) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        model.model_validate(raw)
    return err.value


@pytest.mark.parametrize(("loc", "text"), [
    (("cameras", 0, "zones", 1, "dwell_s"), "cameras[0].zones[1].dwell_s"),
    (("cameras",), "cameras"),
    ((0, "id"), "[0].id"),
    ((), "(top level)"),
])
def test_key_path_reads_like_the_yaml(loc: tuple[int | str, ...], text: str) -> None:
    assert key_path(loc) == text


def test_a_wrong_value_is_echoed_and_a_missing_key_is_not() -> None:
    exc = _error(_Doc, {"cameras": [{"id": "c", "zones": [{"id": "z", "dwell_s": 1},
                                                          {"dwell_s": -5}]}]})
    assert [p.text for p in problems(exc)] == [
        "cameras[0].zones[1].id: Field required",
        "cameras[0].zones[1].dwell_s: Input should be greater than or equal to 0 (got -5)",
    ]


def test_without_input_nothing_of_the_value_is_repeated() -> None:
    exc = _error(_Zone, {"id": "z", "dwell_s": "hunter2-secret"})
    assert "hunter2" in describe(exc)
    assert describe(exc, with_input=False) == (
        "dwell_s: Input should be a valid integer, unable to parse string as an integer")


def test_a_long_value_is_shortened() -> None:
    exc = _error(_Zone, {"id": "z", "dwell_s": "x" * 500})
    echo = describe(exc).split(" (got ", 1)[1]
    assert echo.endswith("...)") and len(echo) == 81
    assert shorten("abc") == "'abc'"


def test_prefix_places_the_document_in_a_larger_one_and_each_error_keeps_its_loc() -> None:
    exc = _error(_Zone, {"dwell_s": 1, "colour": "red"})
    found = problems(exc, ("config", "cameras", 0, "zones", 2))
    assert [p.loc[-1] for p in found] == ["id", "colour"]
    assert describe(exc, ("zones", 2), sep="\n") == (
        "zones[2].id: Field required\n"
        "zones[2].colour: Extra inputs are not permitted (got 'red')")


def test_an_error_of_the_whole_document() -> None:
    exc = _error(_Doc, ["not", "a", "mapping"])
    assert describe(exc, with_input=False) == (
        "(top level): Input should be a valid dictionary or instance of _Doc")


def test_a_file_that_fails_before_validation_is_named_with_its_line(tmp_path: Path) -> None:
    missing, latin1, broken = tmp_path / "nope.yaml", tmp_path / "latin1.yaml", tmp_path / "b.yaml"
    latin1.write_bytes("edge_id: caf\xe9\n".encode("latin-1"))
    broken.write_text("a: 1\nb: [2\n", encoding="utf-8")
    with pytest.raises(LookupError, match=r"nope\.yaml: cannot read: No such file"):
        read_yaml(missing, LookupError)
    with pytest.raises(LookupError, match=r"latin1\.yaml: not UTF-8 text \(invalid "):
        read_yaml(latin1, LookupError)
    with pytest.raises(LookupError, match=r"b\.yaml: line 3 column 1: invalid YAML: "):
        read_yaml(broken, LookupError)
    broken.write_text("a: [1, 2]\n", encoding="utf-8")
    assert read_yaml(broken, LookupError) == {"a": [1, 2]}
