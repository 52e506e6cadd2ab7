"""The paper's figures (docs/PROTOCOL.md §6) from the user's own runs: convergence curves, and the loss
landscape around the solutions (random rays, the SGD-SWA line, planes through three weights)."""
