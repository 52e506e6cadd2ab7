"""swa-bench: reproduce Stochastic Weight Averaging (Izmailov et al., UAI 2018)."""

__version__ = "0.1.0"
