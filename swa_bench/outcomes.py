"""How a `swa-bench train` process ends, as its exit status: the one place the numbers live (the
CLI exits with them, grids and SLURM read them back)."""

EXIT_FINISHED = 0  # finished, or already finished
EXIT_FAILED = 1  # a grid or a table command with nothing to show (see its message)
EXIT_USER_ERROR = 2  # bad input or an unwritable record: one `error:` line, no traceback
EXIT_DIVERGED = 3  # a non-finite training loss ended the run; its summary says so (a result, not retried)
EXIT_IN_USE = 69  # the run directory is held by another training process (EX_UNAVAILABLE): not this attempt's failure
EXIT_PREEMPTED = 75  # stopped by SIGTERM/SIGUSR1 after a checkpoint (EX_TEMPFAIL): run it again to resume
EXIT_INTERRUPTED = 130  # Ctrl-C; the last checkpoint stays

# Runs that ended as planned (a result, or a divergence, which is one), runs to resume later, and
# runs another process is training (a second grid on the same --out): none is a failure of the run.
NOT_FAILURES = (EXIT_FINISHED, EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_IN_USE)
