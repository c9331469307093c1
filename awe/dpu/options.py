"""Parsing ``dpu.run`` options as Astro-WISE's OptionsParser does, and process parameters.

Every option has a short and a long name (``i``/``instrument``), a type, a default and may
be required. ``p``/``pars`` (process parameters) and ``C``/``commit`` belong to every
sequence. Values are data: checked against their type, stored as JSON, never evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from awe.errors import AweError
from awe.sequence import Option, SequenceSpec
from awe.suggest import did_you_mean
from awe.tables import ShowsAsTable, Table

COMMON_OPTIONS = (
    Option("p", "pars", dict, {}, help="process parameters, e.g. Pars(...).get()"),
    Option("C", "commit", int, 0, help="1: store the products in the database"),
)


class OptionList(ShowsAsTable, list):
    """A sequence's options (``dpu.show_sequence_options``), shown as a table."""

    def table(self) -> Table:
        rows = [
            [o.short, o.long, o.type.__name__, o.describe_default(), o.required, o.help]
            for o in self
        ]
        return Table(("short", "long", "type", "default", "required", "help"), rows)


class OptionError(AweError):
    """An option or parameter given to ``dpu.run`` is not valid."""


@dataclass(frozen=True)
class ParsedOptions:
    """Options by long name for each step of a chain, plus the job-wide ones."""

    per_step: list[dict[str, Any]]
    parameters: dict[str, Any]
    commit: bool

    def as_record(self) -> dict[str, Any]:
        """All given option values by long name, as stored with the job."""
        merged: dict[str, Any] = {}
        for values in self.per_step:
            merged.update(values)
        return merged


def all_options(steps: Sequence[SequenceSpec]) -> list[Option]:
    """The options of a chain (each once) followed by the common ones."""
    seen: dict[str, Option] = {}
    for step in steps:
        for option in step.options:
            other = seen.get(option.long)
            if other is not None and (other.short, other.type) != (option.short, option.type):
                raise OptionError(
                    f"the steps of this chain disagree about option {option.long!r}: "
                    f"{other.short!r} ({other.type.__name__}) vs {option.short!r} "
                    f"({option.type.__name__}); run the steps as separate jobs"
                )
            seen.setdefault(option.long, option)
    # A sequence may give a common option's short name its own meaning (DES SE's p is PNUM,
    # its C the BLISS calibration); the common option is then reached by its long name.
    taken = {o.short for o in seen.values()}
    common = [replace(o, short=o.long) if o.short in taken else o for o in COMMON_OPTIONS]
    shorts: dict[str, str] = {}
    for option in list(seen.values()) + common:
        if shorts.setdefault(option.short, option.long) != option.long:
            raise OptionError(
                f"the steps of this chain disagree: short option {option.short!r} means both "
                f"{shorts[option.short]!r} and {option.long!r}; run them as separate jobs"
            )
    return list(seen.values()) + common


def option_names(steps: Sequence[SequenceSpec]) -> list[str]:
    """Short names, then long names, as ``get_sequence_options`` lists them."""
    options = all_options(steps)
    shorts = [o.short for o in options]
    return shorts + [o.long for o in options if o.long not in shorts]


def parse_options(steps: Sequence[SequenceSpec], given: Mapping[str, Any]) -> ParsedOptions:
    """Check ``given`` (short or long names) against the chain's options."""
    options = all_options(steps)
    by_name = {o.short: o for o in options} | {o.long: o for o in options}
    values: dict[str, Any] = {}
    for name, value in given.items():
        option = by_name.get(name)
        if option is None:
            raise OptionError(
                f"Unknown option {name!r} for {_chain_name(steps)}.{did_you_mean(name, by_name)} "
                f"Valid options: {', '.join(option_names(steps))}."
            )
        if option.long in values:
            raise OptionError(f"option {option.short!r}/{option.long!r} is given twice")
        values[option.long] = _check_type(option, value)
    for option in options:
        if option.long not in values:
            if option.required:
                raise OptionError(
                    f"{_chain_name(steps)} needs option {option.short!r} or {option.long!r}"
                    f" ({option.help or option.type.__name__})"
                )
            if option.default is not None:
                values[option.long] = option.default
    parameters = check_parameters(steps, values.pop("pars", {}) or {})
    commit = bool(values.pop("commit", 0))
    per_step = [
        {o.long: values[o.long] for o in step.options if o.long in values} for step in steps
    ]
    return ParsedOptions(per_step=per_step, parameters=parameters, commit=commit)


def check_parameters(steps: Sequence[SequenceSpec], given: Mapping[str, Any]) -> dict[str, Any]:
    """Process parameters: every key must be one the chain declares."""
    known: dict[str, Any] = {}
    for step in steps:
        known.update(step.parameters)
    for key, value in given.items():
        if key not in known:
            hint = did_you_mean(key, known)
            valid = ", ".join(sorted(known)) or "(this sequence has none)"
            raise OptionError(f"Unknown process parameter {key!r}.{hint} Valid: {valid}.")
        default = known[key]
        if default is not None and not _is_instance(value, type(default)):
            raise OptionError(
                f"process parameter {key!r} expects {type(default).__name__} "
                f"(default {default!r}), got {value!r}"
            )
    _require_json(given, "process parameters")
    return dict(given)


def _check_type(option: Option, value: Any) -> Any:
    if option.long == "commit":
        if value in (0, 1, True, False):
            return int(value)
        raise OptionError(f"option 'C'/'commit' is 0 or 1, got {value!r}")
    if not _is_instance(value, option.type):
        raise OptionError(
            f"option {option.short!r}/{option.long!r} expects {option.type.__name__}, "
            f"got {type(value).__name__} {value!r}"
        )
    _require_json(value, f"option {option.long!r}")
    return float(value) if option.type is float else value


def _is_instance(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _require_json(value: Any, what: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise OptionError(
            f"{what} must be plain data (str, numbers, lists, dicts); got {value!r}"
        ) from None


def _chain_name(steps: Sequence[SequenceSpec]) -> str:
    return ">".join(step.name for step in steps)


def options_from_text(steps: Sequence[SequenceSpec], pairs: Sequence[str]) -> dict[str, Any]:
    """``['i=WFI', 'd=2000-04-28', 'C=1']`` from a command line, typed by the chain's
    declarations: ``str`` as given, ``int``/``float`` as numbers, ``list`` as a JSON list or
    comma-separated words, ``dict`` (``p``/``pars``) as a JSON object. Values are read as
    data (JSON at most), never evaluated. Unknown names are passed on as text, so that
    :func:`parse_options` refuses them with the valid names."""
    options = all_options(steps)
    by_name = {o.short: o for o in options} | {o.long: o for o in options}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise OptionError(f"{pair!r} is not an option: write name=value, e.g. i=WFI")
        option = by_name.get(name)
        values[name] = text if option is None else _from_text(option, text)
    return values


def _from_text(option: Option, text: str) -> Any:
    kind = option.type
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind in (list, dict):
            if kind is list and not text.lstrip().startswith("["):
                return [word.strip() for word in text.split(",") if word.strip()]
            value = json.loads(text)
            if not isinstance(value, kind):
                raise ValueError(f"JSON {type(value).__name__}, not {kind.__name__}")
            return value
    except ValueError as err:
        example = {int: "3", float: "2.5", list: "a,b or '[1, 2]'", dict: "'{\"KEY\": 1.0}'"}
        raise OptionError(
            f"option {option.short!r}/{option.long!r} expects {kind.__name__}, got {text!r} "
            f"({err}); e.g. {option.short}={example[kind]}"
        ) from None
    return text
