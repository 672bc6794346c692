"""A lost worker of a multi-worker cluster: a clean stop in bounded time, then ``--resume``.

Every optimizer step of a cluster waits in an all-reduce for every worker.
When a worker is gone, TensorFlow sometimes notices: a killed worker refuses
the connection at once; a stopped one (SIGSTOP) misses the coordination
service's heartbeats for about 10 s. A worker that hangs while its threads
still run (a deadlock, a stuck file system) is never noticed: the others
would wait in the collective for ever. :class:`ClusterGuard` bounds that
wait. The step counts itself into a variable, once when it enters the
all-reduce and once when it leaves it (odd = waiting for the others); a
watchdog thread that sees the count odd and unchanged for ``timeout_s``
seconds aborts the collectives (``abort_collective_ops``). Either way the
chunk call fails, and :meth:`ClusterGuard.watch` turns that into one
:class:`training.errors.WorkerLostError` naming the lost worker (found by
TensorFlow's peer health check), saying the last complete checkpoint is kept
and giving the command that continues the run. ``train.py`` exits with
:data:`WORKER_LOST_EXIT`.

Compiling (XLA) and computing keep the count even, so a slow compile on this
worker is never taken for a lost peer; the bound covers only the wait for the
others, which includes their compile of the same step and the chief's
checkpoint writing between epochs.

TensorFlow's own collective timeout (``CommunicationOptions(timeout_seconds=)``)
would bound the wait too, but made every all-reduce 4x slower here
(docs/training.md), hence the watchdog.
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from .checkpoint import list_checkpoints
from .config import DEFAULT_WORKER_TIMEOUT
from .errors import WorkerLostError

WORKER_LOST_EXIT = 75  # EX_TEMPFAIL: the run can be continued (--resume)
_HEALTH_CHECK_MS = 5000  # per peer, when naming the lost worker


@contextlib.contextmanager
def cluster_guard(config, strategy, out):
    """A :class:`ClusterGuard` for a multiworker run with several replicas, else None."""
    if config.strategy != "multiworker" or strategy.num_replicas_in_sync < 2:
        yield None
        return
    guard = ClusterGuard(strategy, out, timeout_s=config.worker_timeout)
    try:
        yield guard
    finally:
        guard.close()


class ClusterGuard:
    """Bounded waits for the workers of a ``MultiWorkerMirroredStrategy`` cluster.

    Args:
        strategy: the cluster's strategy (its ``cluster_resolver`` names the workers).
        out: the run directory (for the message: checkpoint kept, command to continue).
        timeout_s: longest wait in one all-reduce before the others are declared lost.
        poll_s: how often the watchdog looks.

    Attributes:
        progress: int64 variable the compiled step increments before and after
            its all-reduce (see ``training.distributed.ReplicatedChunks``).
    """

    def __init__(self, strategy, out, *, timeout_s: float = DEFAULT_WORKER_TIMEOUT,
                 poll_s: float = 0.25):
        import tensorflow as tf

        resolver = strategy.cluster_resolver
        self.me = (resolver.task_type, resolver.task_id)
        self.peers = [(job, i, address)
                      for job, addresses in sorted(resolver.cluster_spec().as_dict().items())
                      for i, address in enumerate(addresses) if (job, i) != self.me]
        self.out, self.timeout_s, self.poll_s = Path(out), float(timeout_s), float(poll_s)
        # A plain variable (not mirrored): each worker counts its own steps.
        with tf.init_scope():
            self.progress = tf.Variable(0, dtype=tf.int64, trainable=False, name="cluster_progress")
        self._lock = threading.Lock()
        self._watching = False
        self._fired: tuple[float, list] | None = None  # (seconds waited, silent peers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watchdog, name="cluster-guard", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the watchdog thread."""
        self._stop.set()
        self._thread.join()

    @contextlib.contextmanager
    def watch(self, epoch: int):
        """Run one compiled chunk of epoch ``epoch`` (1-based) under the watchdog.

        Raises:
            WorkerLostError: the chunk failed because a worker is gone, or waited
                longer than ``timeout_s`` in an all-reduce.
        """
        import tensorflow as tf

        with self._lock:
            self._watching = True
        try:
            yield
        except tf.errors.OpError as exc:
            if self._fired:
                waited, silent = self._fired
                # Every peer answers: one of them hangs (with two workers, the other one).
                lost = silent or list(self.peers)
                how = (f"it stopped answering; no all-reduce finished for {waited:.0f} s" if silent
                       else f"it answers, but no all-reduce finished for {waited:.0f} s")
            else:
                lost = self._unhealthy_peers()
                if not lost:
                    raise  # no worker is missing: a genuine error, reported as such
                how = f"it stopped answering: {type(exc).__name__} from TensorFlow"
            raise WorkerLostError(self._message(lost, epoch, how), lost) from None
        finally:
            with self._lock:
                self._watching = False

    def _watchdog(self) -> None:
        import tensorflow as tf
        from tensorflow.python.eager import context

        seen, since = None, time.monotonic()
        while not self._stop.wait(self.poll_s):
            with self._lock:
                watching = self._watching
            if not watching:
                seen = None
                continue
            count, now = int(self.progress.numpy()), time.monotonic()
            if count != seen:
                seen, since = count, now
            elif count % 2 and now - since > self.timeout_s:
                self._fired = (now - since, self._unhealthy_peers())
                context.context().abort_collective_ops(
                    tf.errors.UNAVAILABLE, f"cluster guard: no all-reduce finished for "
                    f"{now - since:.0f} s")
                return

    def _unhealthy_peers(self) -> list:
        """The peers that do not answer TensorFlow's health check (dead or stopped)."""
        import tensorflow as tf
        from tensorflow.python.eager import context

        lost = []
        for job, index, address in self.peers:
            try:
                context.context().check_collective_ops_peer_health(
                    f"/job:{job}/replica:0/task:{index}", timeout_in_ms=_HEALTH_CHECK_MS)
            except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                    tf.errors.FailedPreconditionError):
                lost.append((job, index, address))
        return lost

    def _message(self, lost: list, epoch: int, how: str) -> str:
        names = ", ".join(f"{job} {index} ({address})" for job, index, address in lost)
        found = list_checkpoints(self.out / "checkpoints")
        if found:
            kept = f"the last complete checkpoint, {found[-1]}, is kept"
        elif epoch > 1:  # this worker does not see the chief's directory
            kept = f"the chief's last complete checkpoint in {self.out / 'checkpoints'} is kept"
        else:
            kept = "no epoch had finished, so there is no checkpoint yet"
        return (f"lost {names} of the cluster during epoch {epoch} ({how}); {kept}. Continue "
                f"by restarting every worker, each with its own TF_CONFIG, with: "
                f"python train.py --out {self.out} --resume")


def loopback_tf_configs(workers: int) -> list[dict]:
    """The ``TF_CONFIG`` of each worker of a ``workers``-worker cluster on 127.0.0.1.

    Ports are free ones, found by binding port 0 (all at once, so they differ),
    then released for the workers to bind. Start worker ``i`` with
    ``TF_CONFIG=json.dumps(configs[i])`` and ``--strategy multiworker``.
    """
    socks = [socket.socket() for _ in range(workers)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        hosts = [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    finally:
        for s in socks:
            s.close()
    return [{"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}
            for i in range(workers)]
