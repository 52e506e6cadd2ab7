"""Table columns, named as the records name them: "sgd" (the SGD model at the end of its budget) or
an averaged model at a point of its run: "swa_1.25" (SWA after 1.25 budgets), "ema_1", "fge_1" (the FGE
ensemble at the end of the budget), "swa_10ep" (after 10 epochs: the ImageNet rows). One type answers
what a name means, so no module parses it."""

from __future__ import annotations

from dataclasses import dataclass


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
    def baseline(self) -> bool:
        """Whether it is SGD's: the column every other is paired with."""
        return self.name == "sgd"

    @property
    def reports(self) -> str:
        """What its model is (swa_bench/methods): the iterate, averaged weights, or an ensemble;
        a method no longer registered reports weights."""
        method = self._method
        return "iterate" if self.baseline else (method.reports if method is not None else "weights")

    @property
    def ensemble(self) -> bool:
        """Whether it reports an ensemble's prediction (FGE): no single set of weights is its model."""
        return self.reports == "ensemble"

    @property
    def metrics_prefix(self) -> str:
        """Where its model's test metrics are in a metrics row: test_ (the iterate), swa_test_, ema_test_."""
        return "test_" if self.reports == "iterate" else f"{self.method}_test_"

    @property
    def _method(self):
        from swa_bench.methods import find_method

        return find_method(self.method)

    @property
    def _known(self) -> tuple[str, str]:
        """Its method's label, and what it is when the paper does not have it."""
        method = self._method
        if method is None:
            return self.method.upper(), "not a method of the paper"
        return method.label, method.beyond_paper

    @property
    def beyond_paper(self) -> str:
        """The footnote of a column whose method the paper does not have ("" otherwise): such a
        column never gets a paper number."""
        label, what = self._known
        return f"{label} ({what}): beyond the paper, which has no numbers for it" if not self.baseline and what else ""

    def title(self, dataset: str = "") -> str:
        if self.baseline:
            return "SGD (pretrained)" if dataset == "imagenet" else "SGD"
        number, in_epochs = self._point
        label = self._known[0]
        if in_epochs:
            return f"{label} {number} epoch{'' if float(number) == 1 else 's'}"
        return f"{label} {number} B"

    def order(self) -> tuple:
        """Table order: SGD, then each method in the registry's order (the paper's SGD | FGE | SWA,
        then the others), each by its point: budgets before epochs, so that "swa_1" and "swa_1ep" never
        tie (a tie would leave their order to a set's, which changes from process to process)."""
        if self.baseline:
            return (0, "", False, 0.0)
        method = self._method
        rank = method.order if method is not None else 1000
        number, in_epochs = self._point
        return (1 + rank, self.method, in_epochs, float(number))

    @property
    def _point(self) -> tuple[str, bool]:
        """Its point as written, and whether it counts epochs ("10ep") rather than budgets ("1.25")."""
        point = self.name.partition("_")[2]
        return point.removesuffix("ep"), point.endswith("ep")
