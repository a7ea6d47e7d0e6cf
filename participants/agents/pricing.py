"""The price table agents' harnesses use: the study's own (study.prices), so the cost a harness
reports and the cost the server recomputes come from one table."""

from study.prices import PRICES, Price, price_of, turn_cost

__all__ = ["PRICES", "Price", "price_of", "turn_cost"]
