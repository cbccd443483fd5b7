"""Tests for metahyper.config: strict dataclass building, YAML, overrides, hashing."""

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metahyper.config import (
    ConfigError,
    apply_overrides,
    config_hash,
    from_dict,
    load_config,
    load_yaml,
    save_yaml,
    to_dict,
)


class Role(str, Enum):
    EMBEDDING = "embedding"
    HYPERNET = "hypernet"


@dataclass(frozen=True)
class Inner:
    lr: float = 0.01
    steps: int = 5
    roles: tuple[Role, ...] = (Role.EMBEDDING,)

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@dataclass(frozen=True)
class Stage:
    name: str
    inner: Inner = field(default_factory=Inner)
    mode: Literal["transductive", "inductive"] = "transductive"
    limit: Optional[int] = None
    sizes: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    first_order: bool = False
    pair: tuple[int, float] = (1, 2.0)
    maybe_inner: Inner | None = None
    tag: int | str = 0


def error(cls, data, where="cfg.yaml"):
    with pytest.raises(ConfigError) as caught:
        from_dict(cls, data, where=where)
    return str(caught.value)


def test_builds_nested_dataclasses_with_defaults():
    cfg = from_dict(Stage, {"name": "resnet12", "inner": {"lr": 1, "roles": ["hypernet", "embedding"]},
                            "sizes": [1, 2], "root": "/data", "pair": [3, 4], "maybe_inner": {"steps": 2}})
    assert cfg.inner == Inner(lr=1.0, steps=5, roles=(Role.HYPERNET, Role.EMBEDDING))
    assert isinstance(cfg.inner.lr, float)
    assert (cfg.sizes, cfg.root, cfg.pair) == ([1, 2], Path("/data"), (3, 4.0))
    assert cfg.maybe_inner == Inner(steps=2)
    assert from_dict(Stage, {"name": "x", "tag": "v1"}).tag == "v1"
    assert from_dict(Stage, {"name": "x"}) == Stage(name="x")


def test_to_dict_round_trip():
    cfg = Stage(name="a", inner=Inner(roles=(Role.HYPERNET,)), root=Path("/r"), extra={"k": [1, 2]})
    data = to_dict(cfg)
    assert data["inner"]["roles"] == ["hypernet"] and data["root"] == "/r" and data["pair"] == [1, 2.0]
    assert json.loads(json.dumps(data)) == data
    assert from_dict(Stage, data) == cfg


@given(st.text(min_size=1), st.floats(allow_nan=False, allow_infinity=False), st.integers(1, 10**6),
       st.booleans(), st.none() | st.integers(-2**63, 2**63 - 1))
def test_round_trip_property(name, lr, steps, first_order, limit):
    cfg = Stage(name=name, inner=Inner(lr=lr, steps=steps), first_order=first_order, limit=limit)
    assert from_dict(Stage, to_dict(cfg)) == cfg


def test_unknown_key_names_file_dotted_key_and_suggestion():
    message = error(Stage, {"name": "x", "inner": {"lrr": 0.1}})
    assert message.startswith("cfg.yaml: unknown key 'inner.lrr'")
    assert "did you mean 'lr'?" in message


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"name": "x", "inner": {"steps": "five"}}, "cfg.yaml: inner.steps: expected int, got str 'five'"),
        ({"name": "x", "inner": {"steps": True}}, "inner.steps: expected int, got bool True"),
        ({"name": "x", "inner": {"steps": 2.0}}, "inner.steps: expected int, got float 2.0"),
        ({"name": 3}, "name: expected str, got int 3"),
        ({"name": "x", "first_order": "yes"}, "first_order: expected bool"),
        ({"name": "x", "mode": "both"}, "mode: expected one of ['transductive', 'inductive']"),
        ({"name": "x", "inner": {"roles": ["body"]}}, "inner.roles[0]: expected one of ['embedding', 'hyper"),
        ({"name": "x", "sizes": [1, "b"]}, "sizes[1]: expected int"),
        ({"name": "x", "sizes": 3}, "sizes: expected a list"),
        ({"name": "x", "pair": [1]}, "pair: expected 2 items, got 1"),
        ({"name": "x", "extra": {1: "a"}}, "extra: keys must be strings"),
        ({"name": "x", "limit": "many"}, "limit: expected int, got str 'many'"),
        ({"name": "x", "maybe_inner": {"steps": "x"}}, "maybe_inner.steps: expected int"),
        ({"name": "x", "tag": 1.5}, "tag: expected int | str, got float 1.5"),
        ({"name": "x", "inner": 5}, "inner: expected a mapping for Inner, got int 5"),
        ({"inner": {}}, "missing key 'name' (str)"),
        ({"name": "x", "inner": {"steps": 0}}, "cfg.yaml: inner: steps must be >= 1, got 0"),
    ],
)
def test_bad_values_name_the_key(data, expected):
    assert expected in error(Stage, data)


def test_top_level_must_be_mapping():
    assert "<top level>: expected a mapping for Stage" in error(Stage, ["name"])


def test_unsupported_field_type_is_a_programming_error():
    @dataclass(frozen=True)
    class Bad:
        value: complex = 1j

    with pytest.raises(TypeError, match="unsupported config field type complex"):
        from_dict(Bad, {"value": 2j})


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


def test_load_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ninner:\n  lr: 1e-3\n  steps: 3\nextra: {big: 1E5, neg: -2.5e-2, word: e5}\n")
    data = load_yaml(path)
    assert data["inner"] == {"lr": 0.001, "steps": 3}
    assert data["extra"] == {"big": 1e5, "neg": -0.025, "word": "e5"}
    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml(tmp_path / "empty.yaml") == {}


@pytest.mark.parametrize(
    "text, expected", [("name: [unclosed\n", "invalid YAML"), ("- a\n- b\n", "top level must be a mapping")]
)
def test_load_yaml_errors_name_the_file(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_yaml(path)
    assert str(path) in str(caught.value)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: cannot read config file"):
        load_yaml(tmp_path / "nope.yaml")


def test_apply_overrides_parses_yaml_scalars_and_copies():
    data = to_dict(Stage(name="x"))
    overrides = ["inner.lr=1e-4", "inner.steps=10", "first_order=true", "name=hyper_resnet12",
                 "limit=null", "sizes=[1, 2]", "extra={depth: 12}", "root=/d=1"]
    result = apply_overrides(data, overrides)
    assert result["inner"] == {"lr": 1e-4, "steps": 10, "roles": ["embedding"]}
    assert (result["first_order"], result["name"], result["limit"]) == (True, "hyper_resnet12", None)
    assert (result["sizes"], result["extra"], result["root"]) == ([1, 2], {"depth": 12}, "/d=1")
    assert data == to_dict(Stage(name="x"))  # input untouched


@pytest.mark.parametrize(
    "override, expected",
    [
        ("inner.lrr=0.1", "override 'inner.lrr=0.1': unknown key 'inner.lrr'; did you mean 'lr'?"),
        ("modell.name=a", "unknown key 'modell'"),
        ("name.first=a", "'name' is str 'x', not a section"),
        ("maybe_inner.steps=2", "'maybe_inner' is NoneType None, not a section"),
        ("inner.lr", "must look like 'section.key=value'"),
        ("inner..lr=1", "must look like"),
        ("name=[unclosed", "invalid YAML"),
    ],
)
def test_bad_overrides_name_the_key(override, expected):
    with pytest.raises(ConfigError, match="^overrides: ") as caught:
        apply_overrides(to_dict(Stage(name="x")), [override])
    assert expected in str(caught.value)


def test_load_config_with_overrides(tmp_path):
    path = tmp_path / "stage.yaml"
    path.write_text("name: resnet12\ninner: {steps: 3}\n")
    cfg = load_config(Stage, path, ["inner.lr=0.5", "mode=inductive"])
    assert cfg == Stage(name="resnet12", inner=Inner(lr=0.5, steps=3), mode="inductive")
    with pytest.raises(ConfigError) as caught:
        load_config(Stage, path, ["inner.steps=many"])
    assert f"{path} with overrides: inner.steps: expected int, got str 'many'" in str(caught.value)
    path.write_text("name: resnet12\ninner: {step: 3}\n")
    with pytest.raises(ConfigError, match=f"^{path}: unknown key 'inner.step'"):
        load_config(Stage, path, ["inner.lr=0.5"])


def test_save_yaml_round_trip_keeps_order(tmp_path):
    cfg = Stage(name="a", inner=Inner(lr=1e-3, roles=(Role.HYPERNET,)), root=Path("/x"))
    path = tmp_path / "sub" / "saved.yaml"
    save_yaml(cfg, path)
    assert path.read_text().startswith("name: a\ninner:\n")
    assert load_config(Stage, path) == cfg
    assert [p.name for p in path.parent.iterdir()] == ["saved.yaml"]


def test_config_hash():
    digest = hashlib.sha256(b'{"a":1,"b":[1,2]}').hexdigest()
    assert config_hash({"b": (1, 2), "a": 1}) == digest
    assert config_hash(Stage(name="a")) == config_hash(to_dict(Stage(name="a")))
    assert config_hash(Stage(name="a")) != config_hash(Stage(name="a", inner=Inner(lr=0.02)))
