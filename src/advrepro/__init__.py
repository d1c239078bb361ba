"""advrepro: reproduce "Min-max optimization methods in adversarial learning" (CTU Prague, 2024)."""
__version__ = "0.1.0"
