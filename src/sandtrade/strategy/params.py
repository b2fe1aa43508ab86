"""Typed strategy parameters: ``param(10, min=2, max=50, step=1, title="Fast MA")``.

A strategy's ``PARAMS`` maps each name to a plain default (``"fast": 10``) or to a
:class:`ParamSpec` made by :func:`param`, which also says the bounds, the step of a sweep, the
allowed choices and how to show it. ``param`` is a builtin of the sandbox (no import); host code
imports it from here. The loader turns ``PARAMS`` into the defaults dict that ``ctx.params``
gives and a :class:`ParamSpec` per name (a plain default gets one that only fixes its type), and
every override (``--param``, an upload's or a start's params, a sweep's grid) is checked against
it with a ``file:line`` error: ``sma_cross.py:3: fast: 80 is above its maximum 50``.

Pure data and pure functions: the worker imports this, and a spec crosses the sandbox boundary
as JSON (:meth:`ParamSpec.to_json`, :meth:`ParamSpec.from_json`, which checks what it reads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["PARAM_TYPES", "ParamSpec", "param", "spec_for"]

#: The kinds of value a parameter holds, by the name a spec records.
PARAM_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}
#: Bounds on what a spec may carry (it comes from untrusted code and is shown to people).
MAX_CHOICES = 100
MAX_TEXT = 500

Scalar = bool | int | float | str


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter's declaration: its default (whose type is the parameter's), optional
    bounds (``min``, ``max``, inclusive), the ``step`` a sweep takes between them, the allowed
    ``choices``, and a ``title`` and ``help`` text for people."""

    default: Scalar
    type: str
    min: int | float | None = None
    max: int | float | None = None
    step: int | float | None = None
    choices: tuple[Scalar, ...] | None = None
    title: str | None = None
    help: str | None = None

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value`` for this parameter (``80 is above its maximum 50``),
        or None. ``value`` is already of the parameter's type (see ``resolve_params``)."""
        if self.choices is not None and value not in self.choices:
            shown = ", ".join(repr(c) for c in self.choices)
            return f"{value!r} is not one of its choices ({shown})"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if self.min is not None and value < self.min:
            return f"{value!r} is below its minimum {self.min!r}"
        if self.max is not None and value > self.max:
            return f"{value!r} is above its maximum {self.max!r}"
        return None

    def grid(self) -> list[Scalar] | None:
        """Every value a sweep tries when it is given no range: the choices, both booleans,
        or ``min`` to ``max`` by ``step`` (both ends included); None when the spec does not
        say (a number without all three)."""
        if self.choices is not None:
            return list(self.choices)
        if self.type == "bool":
            return [False, True]
        if self.min is None or self.max is None or self.step is None:
            return None
        return number_range(self.min, self.max, self.step, integer=self.type == "int")

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON data (only the fields that are set, and the two always)."""
        out: dict[str, Any] = {"default": self.default, "type": self.type}
        for name in ("min", "max", "step", "title", "help"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out

    @classmethod
    def from_json(cls, data: object) -> ParamSpec:
        """A spec from :meth:`to_json`'s data, checked as :func:`param` checks its arguments
        (the data comes from a sandboxed worker): ``ValueError`` says what is wrong."""
        if not isinstance(data, dict) or "default" not in data:
            raise ValueError("a parameter spec is an object with a default")
        extra = set(data) - {"default", "type", "min", "max", "step", "choices", "title",
                             "help"}
        if extra:
            raise ValueError(f"a parameter spec has no field {sorted(extra)[0]!r}")
        choices = data.get("choices")
        if choices is not None and not isinstance(choices, list):
            raise ValueError("choices must be a list")
        spec = param(data["default"], min=data.get("min"), max=data.get("max"),
                     step=data.get("step"), choices=choices, title=data.get("title"),
                     help=data.get("help"))
        if data.get("type", spec.type) != spec.type:
            raise ValueError(f"type {data.get('type')!r} does not match the default "
                             f"{spec.default!r}")
        return spec


def _kind(value: object) -> str | None:
    for name, kind in PARAM_TYPES.items():
        if type(value) is kind:
            return name
    return None


def _number(name: str, value: object, kind: str) -> int | float | None:
    if value is None:
        return None
    if type(value) is bool or not isinstance(value, int | float):
        raise TypeError(f"param(): {name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"param(): {name} must be finite, got {value!r}")
    if kind == "int" and isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"param(): {name} {value!r} is not a whole number, as the "
                             "default is")
        return int(value)
    if kind == "float":
        return float(value)
    return value


def _text(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"param(): {name} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise ValueError(f"param(): {name} has {len(value):,} characters (at most {MAX_TEXT})")
    return value


def param(default: Scalar, *, min: int | float | None = None,
          max: int | float | None = None, step: int | float | None = None,
          choices: Any = None, title: str | None = None,
          help: str | None = None) -> ParamSpec:
    """Declare a parameter: its default (an int, float, bool or str, which fixes its type),
    optional inclusive bounds, the step a sweep takes, the allowed choices, and a title and
    help text. A mistake in the declaration itself is a ``TypeError``/``ValueError`` (the
    loader shows it at the line of the call); a default outside its own bounds is reported
    by the loader with the parameter's name."""
    kind = _kind(default)
    if kind is None:
        raise TypeError(f"param(): the default must be an int, float, bool or str, got "
                        f"{type(default).__name__}")
    if kind == "float" and not math.isfinite(float(default)):  # type: ignore[arg-type]
        raise ValueError(f"param(): the default must be finite, got {default!r}")
    if kind in ("bool", "str") and (min is not None or max is not None or step is not None):
        raise TypeError(f"param(): min, max and step are for numbers; the default "
                        f"{default!r} is a {kind}")
    lo, hi = _number("min", min, kind), _number("max", max, kind)
    st = _number("step", step, kind)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"param(): min {lo!r} is above max {hi!r}")
    if st is not None and st <= 0:
        raise ValueError(f"param(): step must be positive, got {st!r}")
    picks: tuple[Scalar, ...] | None = None
    if choices is not None:
        if isinstance(choices, str | bytes) or not hasattr(choices, "__iter__"):
            raise TypeError("param(): choices must be a list or tuple of values")
        picks = tuple(choices)
        if not picks or len(picks) > MAX_CHOICES:
            raise ValueError(f"param(): choices must hold 1 to {MAX_CHOICES} values")
        for c in picks:
            if _kind(c) != kind and not (kind == "float" and _kind(c) == "int"):
                raise TypeError(f"param(): choice {c!r} is not a {kind}, as the default is")
            if isinstance(c, str) and len(c) > MAX_TEXT:
                raise ValueError(f"param(): a choice has {len(c):,} characters "
                                 f"(at most {MAX_TEXT})")
        if kind == "float":
            picks = tuple(float(c) for c in picks)  # type: ignore[arg-type]
    return ParamSpec(default=default, type=kind, min=lo, max=hi, step=st, choices=picks,
                     title=_text("title", title), help=_text("help", help))


def spec_for(value: Any) -> ParamSpec:
    """The spec of a ``PARAMS`` value: the value itself when it is one, else a spec that only
    fixes the type of the plain default."""
    if isinstance(value, ParamSpec):
        return value
    kind = _kind(value)
    return ParamSpec(default=value, type=kind or type(value).__name__)


def number_range(start: int | float, stop: int | float, step: int | float, *,
                 integer: bool) -> list[Scalar]:
    """``start``, ``start + step``, ... up to ``stop`` included (within a rounding error for
    floats, which are rounded to 12 significant digits so ``0.1:0.3:0.1`` gives 0.3)."""
    if step <= 0:
        raise ValueError(f"the step must be positive, got {step!r}")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if integer:
        return [int(start + k * step) for k in range(max(0, count))]
    return [float(f"{start + k * step:.12g}") for k in range(max(0, count))]
