"""Cost of a model call: a price the team declares, else the offline data of ``genai-prices``."""

from __future__ import annotations

from dataclasses import dataclass

MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """A declared price in US dollars per million tokens (``cached_input``: cache reads;
    unset, they cost as input)."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None

    def of(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """USD for one call; ``input_tokens`` includes the ``cached_tokens`` read from cache."""
        cached = min(cached_tokens, input_tokens)
        cached_rate = (
            self.cached_input_per_mtok
            if self.cached_input_per_mtok is not None
            else self.input_per_mtok
        )
        return (
            (input_tokens - cached) * self.input_per_mtok
            + cached * cached_rate
            + output_tokens * self.output_per_mtok
        ) / MILLION


def price(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    *,
    declared: Price | None = None,
) -> float | None:
    """USD for one call, ``0.0`` for the scripted model, ``None`` when the price is unknown.

    ``declared`` (the team's own price for the model) wins over ``genai-prices``.
    ``model`` is ``provider:name`` or a bare model name (matched across providers).
    """
    if declared is not None:
        return declared.of(input_tokens, output_tokens, cached_tokens)
    if model == "scripted" or model.startswith("scripted:"):
        return 0.0
    from genai_prices import Usage, calc_price  # its data loads on the first price asked

    provider, _, name = model.partition(":") if ":" in model else ("", "", model)
    try:
        found = calc_price(
            Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cached_tokens or None,
            ),
            model_ref=name,
            provider_id=provider or None,
        )
    except LookupError:
        return None
    return float(found.total_price)


def price_known(model: str) -> bool:
    """True when ``genai-prices`` (or the scripted model's zero) prices ``model``."""
    return price(model, 0, 0) is not None
