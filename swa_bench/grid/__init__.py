"""Many runs: the plan of a table (rows x methods x seeds), launching it locally or on SLURM, and
the state of every run."""
