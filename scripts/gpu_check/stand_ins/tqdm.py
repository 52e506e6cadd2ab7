"""Stand-in for tqdm, put on the runs' path by scripts/gpu_check where tqdm is not installed: no bars.

swa-bench imports tqdm (its trainer draws progress bars and prints its epoch lines with tqdm.write);
the GPU machine's python3 was described without it. This gives the runs what they use of it: the
iterable passed through, no bars, lines still printed."""

import sys


class tqdm:
    def __init__(self, iterable=None, *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def close(self):
        pass

    @staticmethod
    def write(line, file=None, end="\n"):
        (file or sys.stdout).write(str(line) + end)
