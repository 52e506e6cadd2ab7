"""FGE's ensemble (docs/PROTOCOL.md §8): the mean of the collected models' softmax outputs.

Each collected model is evaluated on the test set once, when it is collected, and its probabilities
join a running sum; the ensemble's prediction at any point is that sum over the count. The sum is
run state, kept in the checkpoints like the SWA average's weights, so a resumed run continues the
same ensemble; the models' weights are not needed again (they are kept on disk only for figures).
"""

from __future__ import annotations

import torch


class PredictionEnsemble:
    def __init__(self):
        self.sum: torch.Tensor | None = None  # (test images, classes), float64: a sum of up to hundreds of terms
        self.targets: torch.Tensor | None = None
        self.count = 0
        self.members: list[dict] = []  # per collected model: epoch, its own test accuracy and NLL

    def add(self, probabilities: torch.Tensor, targets: torch.Tensor, epoch: int) -> dict:
        """Add one model's test-set probabilities (rows in the test loader's fixed order); returns the
        model's own metrics."""
        if self.sum is None:
            self.sum, self.targets = torch.zeros_like(probabilities, dtype=torch.float64), targets.clone()
        elif probabilities.shape != self.sum.shape or not torch.equal(targets, self.targets):
            raise RuntimeError("an FGE member was evaluated on other test images than the ensemble so far")
        self.sum += probabilities.double()
        self.count += 1
        member = {"epoch": epoch, **_metrics(probabilities.double(), targets)}
        self.members.append(member)
        return member

    def metrics(self) -> dict:
        """The ensemble's test accuracy (%) and NLL (mean -log of the mean probability of the true class)."""
        return _metrics(self.sum / self.count, self.targets)

    def state_dict(self) -> dict:
        return {"sum": self.sum, "targets": self.targets, "count": self.count, "members": list(self.members)}

    def load_state_dict(self, state: dict) -> None:
        self.sum, self.targets, self.count = state["sum"], state["targets"], int(state["count"])
        self.members = list(state["members"])

    def to(self, device) -> "PredictionEnsemble":
        if self.sum is not None:
            self.sum, self.targets = self.sum.to(device), self.targets.to(device)
        return self


def _metrics(probabilities: torch.Tensor, targets: torch.Tensor) -> dict:
    true_class = probabilities.gather(1, targets.view(-1, 1)).squeeze(1)
    nll = -true_class.clamp_min(torch.finfo(probabilities.dtype).tiny).log().mean()
    acc = (probabilities.argmax(1) == targets).double().mean() * 100.0
    return {"acc": acc.item(), "loss": nll.item()}
