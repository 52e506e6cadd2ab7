"""Table columns, named as the records name them: "sgd" (the SGD model at the end of its budget) or
an averaged model at a point of its run: "swa_1.25" (SWA after 1.25 budgets), "ema_1", "fge_1" (the FGE
ensemble at the end of the budget), "swa_10ep" (after 10 epochs: the ImageNet rows). One type answers
what a name means, so no module parses it."""

from __future__ import annotations

from dataclasses import dataclass

# The methods whose columns report something other than the SGD iterate (an ensemble of collected
# models, averaged weights), in table order after SGD, as the paper orders SGD | FGE | SWA: label,
# and for a method the paper does not have, what it is (its columns are marked as beyond the paper).
AVERAGED_METHODS = {"fge": ("FGE", ""), "swa": ("SWA", ""), "ema": ("EMA", "exponential moving average of the weights")}
# Of those, the ones whose reported model is an ensemble of predictions rather than one set of weights.
ENSEMBLE_METHODS = {"fge"}


@dataclass(frozen=True)
class Column:
    name: str

    @classmethod
    def at_budget(cls, method: str, budget: float) -> "Column":
        return cls(f"{method}_{budget:g}")

    @classmethod
    def at_epochs(cls, method: str, epochs: int) -> "Column":
        return cls(f"{method}_{epochs}ep")

    def problem(self) -> str | None:
        """Why the name is not a column's (None if it is one): "sgd", or a method and its point, a
        number of budgets or of epochs ("swa_1.25", "swa_10ep"). Names from a summary are checked
        with it before anything orders or titles them."""
        import math

        if self.name == "sgd":
            return None
        method, underscore, point = self.name.partition("_")
        if not underscore or not method or not method.isidentifier() or method == "sgd":
            return "not sgd or <method>_<point>"
        try:
            number = float(point.removesuffix("ep"))
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or number <= 0 or point.strip() != point:
            return f"its point {point!r} is not a positive number of budgets or of epochs (<n>ep)"
        return None

    @property
    def method(self) -> str:
        return self.name.partition("_")[0]

    @property
    def averaged(self) -> bool:
        """Whether it reports the averaged model (SWA, EMA) rather than the SGD iterate."""
        return self.method != "sgd"

    @property
    def ensemble(self) -> bool:
        """Whether it reports an ensemble's prediction (FGE): no single set of weights is its model."""
        return self.method in ENSEMBLE_METHODS

    @property
    def metrics_prefix(self) -> str:
        """Where its model's test metrics are in a metrics row: test_ (the iterate), swa_test_, ema_test_."""
        return f"{self.method}_test_" if self.averaged else "test_"

    @property
    def _known(self) -> tuple[str, str]:
        return AVERAGED_METHODS.get(self.method, (self.method.upper(), "not a method of the paper"))

    @property
    def beyond_paper(self) -> str:
        """The footnote of a column whose method the paper does not have ("" otherwise): such a
        column never gets a paper number."""
        label, what = self._known
        return f"{label} ({what}): beyond the paper, which has no numbers for it" if self.averaged and what else ""

    def title(self, dataset: str = "") -> str:
        if not self.averaged:
            return "SGD (pretrained)" if dataset == "imagenet" else "SGD"
        point = self.name.partition("_")[2]
        label = self._known[0]
        return f"{label} {point[:-2]} epochs" if point.endswith("ep") else f"{label} {point} B"

    def order(self) -> tuple:
        """Table order: SGD, then each averaged method by its point."""
        if not self.averaged:
            return (0, "", 0.0)
        rank = list(AVERAGED_METHODS).index(self.method) if self.method in AVERAGED_METHODS else len(AVERAGED_METHODS)
        return (1 + rank, self.method, float(self.name.partition("_")[2].removesuffix("ep")))
