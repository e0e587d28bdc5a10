"""Cost of a model call from the offline price data of ``genai-prices``."""

from __future__ import annotations

from genai_prices import Usage, calc_price


def price(
    model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0
) -> float | None:
    """USD for one call, ``0.0`` for the scripted model, ``None`` when the price is unknown.

    ``model`` is ``provider:name`` or a bare model name (matched across providers).
    """
    if model == "scripted" or model.startswith("scripted:"):
        return 0.0
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
