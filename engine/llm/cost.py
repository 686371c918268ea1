"""Token prices and the cost of a call, in US dollars.

PRICES ARE CONFIGURATION, NOT FACTS.  :data:`DEFAULT_PRICES` holds the providers' published list
prices (USD per 1,000,000 tokens) as known when this table was written (2025); providers change them,
and batch/cached-input discounts are not modelled.  Pass your own :class:`PriceTable` to a provider
to override them.  A model that is not in the table is *not* given a guessed price: its cost is 0.0
and the result says ``priced=False``, so reports can show "cost unknown" instead of a fabricated
number.

Lookup is by exact name, else by the longest table key that is a prefix of the model name followed
by ``-`` (so ``gpt-4o-mini-2024-07-18`` and ``claude-3-5-haiku-latest`` find ``gpt-4o-mini`` and
``claude-3-5-haiku``, while ``gpt-4o-mini`` never falls back to the ``gpt-4o`` price).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["DEFAULT_PRICES", "FREE", "Cost", "Price", "PriceTable", "cost_usd"]

TOKENS_PER_UNIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per 1,000,000 input and output tokens.  Raises ValueError for negative prices."""

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        if self.input_per_mtok < 0 or self.output_per_mtok < 0:
            raise ValueError("prices must be >= 0")


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one call.  ``usd``: US dollars (0.0 when unpriced).  ``priced``: a price was
    configured for the model; False means the cost is unknown, not zero.  ``price_key``: the table
    entry used."""

    usd: float
    priced: bool
    price_key: str | None = None


# USD per 1M tokens (input, output): list prices, 2025.  Configuration: override with PriceTable(...).
DEFAULT_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        # OpenAI
        "gpt-4o-mini": Price(0.15, 0.60),
        "gpt-4o": Price(2.50, 10.00),
        "gpt-4.1-nano": Price(0.10, 0.40),
        "gpt-4.1-mini": Price(0.40, 1.60),
        "gpt-4.1": Price(2.00, 8.00),
        "o3-mini": Price(1.10, 4.40),
        "o4-mini": Price(1.10, 4.40),
        # Anthropic
        "claude-3-haiku": Price(0.25, 1.25),
        "claude-3-5-haiku": Price(0.80, 4.00),
        "claude-3-5-sonnet": Price(3.00, 15.00),
        "claude-3-7-sonnet": Price(3.00, 15.00),
        "claude-sonnet-4": Price(3.00, 15.00),
        "claude-opus-4": Price(15.00, 75.00),
    }
)

FREE = Price(0.0, 0.0)


class PriceTable:
    """Model name -> :class:`Price`.  ``default``: the price of models not in the table; None (the
    default) means "unknown" (``priced=False``).  A local server (LM Studio) uses ``default=FREE``
    because it has no per-token charge."""

    def __init__(self, prices: Mapping[str, Price] = DEFAULT_PRICES, *, default: Price | None = None) -> None:
        self._prices = MappingProxyType(dict(prices))
        self.default = default

    def __repr__(self) -> str:
        return f"PriceTable({len(self._prices)} models, default={self.default!r})"

    @classmethod
    def free(cls) -> PriceTable:
        """A table pricing every model at 0 USD (a local model server), with ``priced=True``."""
        return cls({}, default=FREE)

    def lookup(self, model: str) -> tuple[str | None, Price | None]:
        """``(key, price)`` for ``model``: exact match, else longest ``key-`` prefix, else the default
        (key None), else ``(None, None)``."""
        name = model.strip().lower()
        if name in self._prices:
            return name, self._prices[name]
        best = max((k for k in self._prices if name.startswith(k + "-")), key=len, default=None)
        if best is not None:
            return best, self._prices[best]
        return None, self.default

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> Cost:
        """The cost of ``input_tokens`` + ``output_tokens`` on ``model``.  Raises ValueError for
        negative token counts."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError("token counts must be >= 0")
        key, price = self.lookup(model)
        if price is None:
            return Cost(0.0, False, None)
        usd = (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / TOKENS_PER_UNIT
        return Cost(usd, True, key)


_DEFAULT_TABLE = PriceTable()


def cost_usd(model: str, input_tokens: int, output_tokens: int, *, table: PriceTable | None = None) -> Cost:
    """The cost of a call on the default (or given) price table.  Unknown model: ``Cost(0.0, False)``."""
    return (table or _DEFAULT_TABLE).cost(model, input_tokens, output_tokens)
