"""scripts/ is a package only so that `python -m scripts.gpu_check` runs the GPU check (a package of
modules) from the source tree; the other scripts run by path, as before."""
