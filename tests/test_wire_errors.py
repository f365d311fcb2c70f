"""wire.errors: the one ``key path: message`` form every loader, push and 422 uses."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wire.errors import describe, key_path, problems, shorten


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
