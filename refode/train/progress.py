"""A dependency-free text progress bar on standard error.

One line per epoch, rewritten in place (``\\r``) at most every
:data:`MIN_INTERVAL` seconds on a terminal, and completed with a newline; when the
stream is not a terminal (a log file) only the completed line is written::

    epoch  3/12  K=4 N=4  batch 22/22  loss 0.4132  train  93.20%  acc  91.50%   12.3s

``loss`` and ``train`` are the running mean training loss and the running training
accuracy of the batches seen so far (``train`` only when the batches report their
correct predictions); ``acc`` is the held-out accuracy given at :meth:`ProgressBar.close`.
"""
import sys
import time

#: seconds between two redraws of the line (the last one is always drawn).
MIN_INTERVAL = 0.2


class ProgressBar:
    """Progress of one epoch of ``total`` batches.

    Parameters
    ----------
    total : int
        Batches in the epoch.
    prefix : str
        Text before the counters (e.g. ``"epoch  3/12  K=N=4"``).
    stream : file, optional
        Default: ``sys.stderr`` (looked up at construction).
    enabled : bool
        False prints nothing.
    """

    def __init__(self, total, prefix="", stream=None, enabled=True):
        self.total, self.prefix = int(total), prefix
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled)
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self.start = self.last = time.perf_counter()
        self.count, self.loss_sum = 0, 0.0
        self.correct, self.counted = 0, 0

    @property
    def running_loss(self):
        """Mean loss over the batches seen so far (NaN before the first)."""
        return self.loss_sum / self.count if self.count else float("nan")

    @property
    def running_accuracy(self):
        """Correct / counted predictions over the batches seen so far (None if none counted)."""
        return self.correct / self.counted if self.counted else None

    def _line(self, accuracy):
        width = len(str(self.total))
        train = self.running_accuracy
        train = "" if train is None else f"  train {100 * train:6.2f}%"
        acc = "" if accuracy is None else f"  acc {100 * accuracy:6.2f}%"
        return (f"{self.prefix}  batch {self.count:>{width}}/{self.total}  "
                f"loss {self.running_loss:.4f}{train}{acc}  "
                f"{time.perf_counter() - self.start:5.1f}s")

    def update(self, loss, correct=0, counted=0):
        """Count one batch: its mean loss and (optionally) its correct / counted predictions.

        Parameters
        ----------
        loss : float
        correct, counted : int
            Correct predictions of the batch and the predictions that count (images:
            the batch size; tagger: the non-padded tokens); 0 leaves them out.
        """
        self.count += 1
        self.loss_sum += float(loss)
        self.correct += int(correct)
        self.counted += int(counted)
        now = time.perf_counter()
        due = now - self.last >= MIN_INTERVAL or self.count == self.total
        if self.enabled and self.live and due:
            self.last = now
            self.stream.write("\r" + self._line(None))
            self.stream.flush()

    def close(self, accuracy=None):
        """Draw the final line (with ``accuracy`` if given) and end it with a newline."""
        if self.enabled:
            self.stream.write("\r" + self._line(accuracy) + "\n")
            self.stream.flush()
