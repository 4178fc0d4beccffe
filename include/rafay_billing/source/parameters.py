"""A usage record's ``parameters``: its priced quantities per billing dimension, its billing labels and
its GPU count (the contract's quantity rules, applied once for every source).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Context, Decimal, Overflow, localcontext
from typing import Any

from rafay_billing.source.record_values import (
    EXACT,
    fits_numeric,
    gpu_number,
    hours_number,
    numeric_fit,
    pg_text,
    seed_text,
)


def record_gpu(record: Mapping[str, Any]) -> tuple[int, Any] | None:
    """(count, raw label_value) of the record's GPU parameter."""
    params = record.get("parameters")
    if not isinstance(params, list):
        return None
    for param in params:
        if isinstance(param, Mapping) and str(param.get("name", "")).strip().lower() == "gpu":
            count = gpu_number(param.get("label_value"))
            if count is not None:
                return count, param.get("label_value")
    return None


def record_parameters(record: Mapping[str, Any]) -> tuple[dict[str, Decimal | None], dict[str, str]]:
    """The record's priced quantities per dimension and its billing labels, from ``parameters``.

    Why here: the contract's quantity rules are applied once, for every source. A quantitative
    parameter (``is_label`` false) bills its ``raw_usage`` (size x hours in the lowest unit: 100 GB
    for 12 h is 1200). A label with a numeric ``label_value`` bills ``label_value x raw_usage``
    (24 CPUs for 20.594723 h = 494.273352 CPU-hours). A non-numeric label (``ServiceID``,
    ``Contract ID``) is a billing label, carried into the instance's line items. Dimension keys are
    lower-cased (prices match them case-insensitively); a usage that cannot be a quantity
    (negative, not a number) is kept as ``None`` so a price for it becomes an exception, not a
    silent zero. A name repeated (any case) keeps its first entry.

    Every label's value is also kept as text in ``labels``, numeric ones too (issue 21, rule 6): a
    label that a price row names as its ``label_key`` is an identity, whatever its value looks like,
    and rating, which knows the price book, drops the numeric labels no price row names from the line
    items' labels (their quantity stays in ``dimensions``). Values are bounded (:func:`bounded`).
    """
    params = record.get("parameters")
    dimensions: dict[str, Decimal | None] = {}
    labels: dict[str, str] = {}
    if not isinstance(params, list):
        return dimensions, labels
    for param in params:
        if not isinstance(param, Mapping) or not isinstance(param.get("name"), str):
            continue
        name = pg_text(param["name"].strip())
        key = name.lower()
        if not name or key in dimensions or any(k.lower() == key for k in labels):
            continue
        usage = _parameter_usage(param)
        if _truthy(param.get("is_label")):
            raw_value = param.get("label_value")
            value = _label_number(raw_value)
            if raw_value is not None and raw_value != "":
                labels[name] = bounded(pg_text(seed_text(raw_value)))
            if value is None:
                continue
            dimensions[key] = _product(value, usage) if value >= 0 else None
        else:
            dimensions[key] = usage
    return dimensions, labels


LABEL_VALUE_MAX = 1024
"""Characters a label value keeps in landed usage and line items (the raw page keeps all of it)."""


def bounded(text: str, limit: int = LABEL_VALUE_MAX) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when cut (issue 21, rule 17):
    one huge label must not bloat every line item, report and page that shows it."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _label_number(raw_value: Any) -> Decimal | None:
    """A label value as a quantity, or None. Text needs ASCII digits (what rating's SQL also takes as
    numeric, rating/stage_prices.sql): ``"١٠٠١"`` is an identity label, never a quantity."""
    if raw_value is None or (isinstance(raw_value, str) and not raw_value.isascii()):
        return None
    return hours_number(raw_value, allow_unit=False)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _parameter_usage(param: Mapping[str, Any]) -> Decimal | None:
    """A parameter's usage: ``raw_usage``, else the number in ``usage`` (``"1200h"``); None if unusable."""
    for name in ("raw_usage", "usage"):
        value = param.get(name)
        if value is None:
            continue
        number = hours_number(value, allow_unit=(name == "usage"))
        if number is None or number < 0:
            return None
        fitted, problem = numeric_fit(number)
        return None if problem else fitted
    return None


def _product(a: Decimal, b: Decimal | None) -> Decimal | None:
    """``a x b`` exactly (the default 28-digit context would round long products)."""
    if b is None:
        return None
    digits = len(a.as_tuple().digits) + len(b.as_tuple().digits) + 2
    try:
        with localcontext(Context(prec=max(28, digits))):
            product = a * b
    except Overflow:  # a label value like 1e999999: far beyond NUMERIC, a quantity that cannot be billed
        return None
    fitted, problem = numeric_fit(product)
    return None if problem else fitted


def dimensions_from(text: str) -> dict[str, Decimal | None]:
    if not text:
        return {}
    return {k: (None if v is None else Decimal(v)) for k, v in json.loads(text).items()}


_KEYABLE = (str, int, bool, type(None))


_PARAMETER_CACHE: dict[tuple, tuple] = {}


_PARAMETER_CACHE_MAX = 16_384


def _parameter_info(name: str, is_label: Any, raw_value: Any) -> tuple:
    """What a parameter's name, ``is_label`` and ``label_value`` say, whatever its usage:
    (display name or None to skip, key, is a label, label number, label number negative, label text,
    (GPU count, raw value) or None). The rules are ``record_parameters``' and ``record_gpu``'s."""
    display = pg_text(name.strip())
    label = _truthy(is_label)
    number = text = None
    if label:
        number = _label_number(raw_value)
        if raw_value is not None and raw_value != "":
            text = bounded(pg_text(seed_text(raw_value)))
    gpu = None
    if name.strip().lower() == "gpu":
        count = gpu_number(raw_value)
        if count is not None:
            gpu = (count, raw_value)
    negative = number is not None and number < 0
    return (display or None, display.lower(), label, number, negative, text, gpu)


def parameters_of(params: list) -> tuple[dict[str, Decimal | None], dict[str, str], tuple[int, Any] | None]:
    """``record_parameters`` and ``record_gpu`` of one record's parameter list, in one pass.

    Why a cache: a profile's records repeat the same parameter names, label flags and label values
    (``GPU`` ``8``, ``CPU`` ``96``); only the usage differs. What those three say is worked out once
    per distinct triple (text, whole numbers, booleans and null only: ``Decimal("1.0")`` and
    ``Decimal("1.00")`` are equal keys with different products, so they are never cached) and
    only the usage and the product are computed per record.
    """
    dimensions: dict[str, Decimal | None] = {}
    labels: dict[str, str] = {}
    label_keys: set[str] = set()
    gpu = None
    cache = _PARAMETER_CACHE
    for param in params:
        if type(param) is not dict and not isinstance(param, Mapping):
            continue
        name = param.get("name")
        if not isinstance(name, str):
            continue
        is_label = param.get("is_label")
        raw_value = param.get("label_value")
        if type(raw_value) in _KEYABLE and type(is_label) in _KEYABLE:
            key = (name, is_label, type(is_label), raw_value, type(raw_value))
            info = cache.get(key) or _remember(key, _parameter_info(name, is_label, raw_value))
        else:
            info = _parameter_info(name, is_label, raw_value)
        display, dim_key, label, number, negative, text, found = info
        if gpu is None and found is not None:
            gpu = found
        if display is None or dim_key in dimensions or dim_key in label_keys:
            continue
        if label:
            if text is not None:  # numeric too: rating decides whether it is an identity (rule 6)
                labels[display] = text
                label_keys.add(dim_key)
            if number is None:
                continue
            dimensions[dim_key] = None if negative else _dimension_product(number, _usage_of(param))
        else:
            dimensions[dim_key] = _usage_of(param)
    return dimensions, labels, gpu


def _remember(key: tuple, info: tuple) -> tuple:
    cache = _PARAMETER_CACHE
    if len(cache) >= _PARAMETER_CACHE_MAX:
        cache.clear()
    cache[key] = info
    return info


def _usage_of(param: Mapping[str, Any]) -> Decimal | None:
    """``_parameter_usage(param)``, with an exact, plain, non-negative ``raw_usage`` taken directly."""
    raw = param.get("raw_usage")
    if type(raw) is Decimal:
        if raw.is_finite() and not raw < 0 and fits_numeric(raw):
            return raw
    elif type(raw) is int and raw >= 0:
        number = Decimal(raw)
        if fits_numeric(number):
            return number
    return _parameter_usage(param)


def _dimension_product(a: Decimal, b: Decimal | None) -> Decimal | None:
    """``_product(a, b)``: exact in ``EXACT``, which gives the very same number as ``_product``'s
    context whenever the product fits NUMERIC in plain notation (then no context rounds it); any
    other product goes through ``_product`` itself."""
    if b is None:
        return None
    try:
        product = EXACT.multiply(a, b)
    except ArithmeticError:
        return _product(a, b)
    if fits_numeric(product):
        return product
    return _product(a, b)
