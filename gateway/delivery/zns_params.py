"""Which notice fact fills which parameter of a ZNS template, and whether they agree.

Provinces register ZNS templates with their own parameter names (``ten``, ``ma_ho_so``,
``noi_nhan``…); ``ZNS_PARAMS_<KIND>`` maps them to the facts the gateway documents
(:data:`gateway.texts.zalo.ZNS_FACTS`). Rules:

- A template parameter is filled by the fact it is mapped to, else by the fact of the
  same name, else not at all (Zalo then decides: a required one is refused).
- :func:`check` compares a template (as ``/template/info/v2`` describes it) with the
  kind's mapping. It runs when ``tthc serve`` and ``tthc worker`` start
  (:mod:`gateway.processes.zns_check`) and again before every send, so a template that
  changed at Zalo refuses the notice precisely (it falls back to SMS) instead of sending
  a half-filled message. Each problem names the variable to fix:

  * ``ZNS_TEMPLATE_<KIND>``: the template is not ``ENABLE`` (at start-up only a
    warning: a template still in review is used as soon as Zalo enables it), or Zalo
    does not know it;
  * ``ZNS_PARAMS_<KIND>``: a mapped parameter the template does not declare; a required
    parameter no fact fills; a ``NUMBER`` parameter given a fact that is not a number
    (``amount``), a ``DATE`` parameter given a fact that is not a date (``…_date``).

- :func:`template_data` renders the values: a ``NUMBER`` parameter gets bare digits
  (``1500000``), a ``DATE`` one ``dd/mm/yyyy``, any other the text as a citizen reads it.
  Only ``text`` facts are shortened to a parameter's ``maxLength``; a code, a link or a
  one-time code is sent whole, or refused by the template check before sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from gateway.errors import FieldError, ValidationFailed
from gateway.texts.zalo import ZNS_FACTS, zns_data, zns_numbers
from providers.zalo.zns import ENABLED, PARAM_DATE, PARAM_NUMBER, ZnsTemplate

# What each typed listParams parameter accepts, by fact kind.
_TYPED: Mapping[str, str] = {PARAM_NUMBER: "number", PARAM_DATE: "date"}


def params_variable(kind: str) -> str:
    return f"ZNS_PARAMS_{kind.upper()}"


def template_variable(kind: str) -> str:
    return f"ZNS_TEMPLATE_{kind.upper()}"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One disagreement between a template and its mapping, naming the variable to fix."""

    variable: str
    param: str | None
    reason: str

    @property
    def detail(self) -> str:
        """The parameter (if any) and the reason, without the variable."""
        return f"{self.param}: {self.reason}" if self.param else self.reason

    def __str__(self) -> str:
        return f"{self.variable}: {self.detail}"


def filled(template: ZnsTemplate, mapping: Mapping[str, str]) -> dict[str, str]:
    """Template parameter → fact, for the declared parameters some fact fills."""
    found: dict[str, str] = {}
    for param in template.params:
        fact = mapping.get(param.name) or (param.name if param.name in ZNS_FACTS else None)
        if fact is not None:
            found[param.name] = fact
    return found


def check(
    kind: str, template: ZnsTemplate, mapping: Mapping[str, str], *, status: bool = True
) -> list[Mismatch]:
    """Every way ``template`` and the kind's ``mapping`` disagree (see the module doc);
    ``status=False`` leaves out whether the template is enabled."""
    problems: list[Mismatch] = []
    tid = template.template_id
    if status and template.status != ENABLED:
        problems.append(
            Mismatch(
                template_variable(kind), None, f"template {tid} is {template.status}, not ENABLE"
            )
        )
    declared = {param.name: param for param in template.params}
    variable = params_variable(kind)
    for name in mapping:
        if name not in declared:
            has = ", ".join(declared) or "no parameters"
            problems.append(
                Mismatch(variable, name, f"not a parameter of template {tid} (it has {has})")
            )
    facts = filled(template, mapping)
    for param in template.params:
        fact = facts.get(param.name)
        if fact is None:
            if param.required:
                problems.append(
                    Mismatch(
                        variable,
                        param.name,
                        f"required by template {tid} but no fact fills it; "
                        f"map it ({param.name}=<fact>)",
                    )
                )
            continue
        wanted = _TYPED.get(param.type.upper())
        if wanted is not None and ZNS_FACTS[fact] != wanted:
            problems.append(
                Mismatch(
                    variable,
                    param.name,
                    f"template {tid} declares it {param.type.upper()}, "
                    f"but {fact} is a {ZNS_FACTS[fact]} fact (a {wanted} fact is needed)",
                )
            )
    return problems


def refuse_if_mismatched(kind: str, template: ZnsTemplate, mapping: Mapping[str, str]) -> None:
    """Raise ``ValidationFailed`` (each field ``<variable>.<param>``) if they disagree."""
    problems = check(kind, template, mapping)
    if problems:
        raise ValidationFailed(
            [
                FieldError(f"{p.variable}.{p.param}" if p.param else p.variable, p.reason)
                for p in problems
            ],
            "; ".join(str(p) for p in problems),
        )


def template_data(
    template: ZnsTemplate, mapping: Mapping[str, str], params: Mapping[str, Any], zone: tzinfo
) -> dict[str, str]:
    """``template_data`` for this notice: each filled parameter with its fact's value, in
    the form the parameter's type takes (facts the notice lacks are left out)."""
    texts = zns_data(params, zone)
    numbers = zns_numbers(params)
    declared = {param.name: param for param in template.params}
    data: dict[str, str] = {}
    for name, fact in filled(template, mapping).items():
        param = declared[name]
        value = numbers.get(fact) if param.type.upper() == PARAM_NUMBER else texts.get(fact)
        if value is None:
            continue
        if ZNS_FACTS[fact] == "text" and param.max_length:
            value = value[: param.max_length]
        data[name] = value
    return data
