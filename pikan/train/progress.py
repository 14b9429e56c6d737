"""The progress display of a fit: a tqdm bar on a terminal, plain lines on stderr otherwise.

``fit(progress=False)`` turns it off; in a distributed fit only rank 0 shows it. Each stage
is announced by name (``[pikan fit] stage 1/6: Adam fit with sparsity (240 steps)``); lines
read ``[pikan fit] step 40/200 stage 1 adam loss 1.234e-03 val 2.345e-03 lr 1.00e-02 eta
12s``; the last line says where and why training stopped (steps done, early stop, time limit,
divergence), so a bar that ends at 400/800 says why.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """tqdm on a terminal; otherwise a line every ``every`` steps; nothing when disabled.

    Parameters
    ----------
    enabled : bool
    total : int
        Steps of the whole recipe.
    initial : int
        Steps already done (a resumed fit); the time estimate counts from here.
    every : int
        Steps between lines when stderr is not a terminal.
    """

    def __init__(self, enabled: bool, total: int, initial: int, every: int) -> None:
        self.enabled, self.every, self.total, self.bar = enabled, every, total, None
        self.start, self.initial = time.perf_counter(), initial
        if enabled and sys.stderr.isatty():
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=initial, file=sys.stderr,
                                dynamic_ncols=True, desc="fit")

    def update(self, row: dict) -> None:
        if not self.enabled:
            return
        text = f"loss {row['loss']:.3e}" + (f" val {row['val']:.3e}" if row["val"] is not None else "")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"stage {row['stage'] + 1} {text}", refresh=False)
            return
        step = row["step"]
        if step % self.every == 0 or step == self.total:
            done = step - self.initial
            rate = (time.perf_counter() - self.start) / max(done, 1)
            eta = rate * max(self.total - step, 0)
            print(f"[pikan fit] step {step}/{self.total} stage {row['stage'] + 1} {row['optimizer']} "
                  f"{text} lr {row['lr']:.2e} eta {eta:.0f}s", file=sys.stderr, flush=True)

    def stage(self, index: int, count: int, label: str) -> None:
        """Announce stage ``index`` (0-based) of ``count`` by name; on a terminal the bar's
        description shows it."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description_str(f"fit: {label}", refresh=False)
        self.message(f"stage {index + 1}/{count}: {label}")

    def finish(self, text: str) -> None:
        """Close the display with a last line ``text`` (why and where training stopped)."""
        self.message(text)
        self.close()

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(f"[pikan fit] {text}", file=sys.stderr)
        else:
            print(f"[pikan fit] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
