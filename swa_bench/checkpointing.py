"""Rolling checkpoints written off the training loop's critical path.

The loop only copies its state (model, momentum, average) into host-memory buffers, which is as fast
as a memory copy; a writer thread then serialises, hashes, writes, fsyncs and renames it exactly as
`RunRecords.save_checkpoint` does when called directly. At most one write is in flight: the next
checkpoint first waits for the previous one, so the buffers can be reused and the files on disk
always follow each other in order. A failed write (no space, no permission) is raised in the loop
at the next checkpoint or when the run waits for its writes, as the same one-line error.

Every guarantee of a direct write stays: the files are replaced atomically, so a kill at any moment
(mid-write included) leaves the previous checkpoint loadable, and the copy is taken at the epoch's
end, so a resume from it is exactly a resume from a direct write.
"""

from __future__ import annotations

import threading
import time

import torch

from swa_bench.records import RunRecords


class HostSnapshot:
    """Copies of a nested state's tensors in host memory, into buffers reused between calls (pinned
    when the tensors live on a GPU: one asynchronous copy each, then one synchronisation)."""

    def __init__(self):
        self._buffers: dict[tuple, torch.Tensor] = {}

    def take(self, state):
        devices = set()
        copied = self._copy(state, (), devices)
        for device in devices:
            torch.cuda.synchronize(device)
        return copied

    def _copy(self, value, path: tuple, devices: set):
        if isinstance(value, torch.Tensor):
            return self._copy_tensor(value, path, devices)
        if isinstance(value, dict):
            return {k: self._copy(v, path + (k,), devices) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._copy(v, path + (i,), devices) for i, v in enumerate(value))
        return value  # numbers, strings, None: immutable

    def _copy_tensor(self, tensor: torch.Tensor, path: tuple, devices: set) -> torch.Tensor:
        buffer = self._buffers.get(path)
        on_gpu = tensor.device.type == "cuda"
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype:
            buffer = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=on_gpu)
            self._buffers[path] = buffer
        buffer.copy_(tensor.detach(), non_blocking=on_gpu)
        if on_gpu:
            devices.add(tensor.device)
        return buffer


class CheckpointWriter:
    """`save(state)` snapshots the state and writes it in the background; `wait()` returns once the
    write is on disk (raising its error, if any). Use as a context manager: leaving waits."""

    def __init__(self, records: RunRecords):
        self.records = records
        self._snapshot = HostSnapshot()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        # Seconds the loop was held per checkpoint (waiting for the previous write plus the copy),
        # and seconds each whole write took in the writer: what `swa-bench bench` reports.
        self.blocked_seconds: list[float] = []
        self.write_seconds: list[float] = []
        self.last_saved = time.monotonic()  # when the last snapshot was taken (or the writer made)

    def save(self, state: dict, wait: bool = False) -> None:
        began = time.perf_counter()
        self.wait()
        copy = self._snapshot.take(state)
        self.last_saved = time.monotonic()
        self.blocked_seconds.append(time.perf_counter() - began)
        self._thread = threading.Thread(target=self._write, args=(copy,), name="swa-bench checkpoint", daemon=True)
        self._thread.start()
        if wait:
            self.wait()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._raise_error()

    def _write(self, state: dict) -> None:
        began = time.perf_counter()
        try:
            self.records.save_checkpoint(state)
        except BaseException as e:  # handed to the loop's thread, which reports it
            self._error = e
        self.write_seconds.append(time.perf_counter() - began)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> "CheckpointWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.wait()
            return
        # Already failing (or stopped): let the write in flight finish, so no temp file is left
        # half-written by a daemon thread dying at exit, but keep the first error.
        if self._thread is not None:
            self._thread.join()
            self._thread = None
