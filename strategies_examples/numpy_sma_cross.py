"""SMA crossover written the way numpy tutorials write it: the averages of ``ctx.history``
arrays, the fast one by convolution, the slow one by TA-Lib.

The same rules as ``sma_cross.py`` (always in the market: long above the slow average, short
below it), so the two make the same trades. ``numpy`` and ``talib`` inside a strategy are
reviewed proxies: array creation from numbers, arithmetic, reductions and the like; no files,
no raw memory (``sandtrade doctor`` lists what strategies may import).

    sandtrade backtest strategies_examples/numpy_sma_cross.py --data DEMO
"""

import numpy as np
import talib

PARAMS = {"fast": 10, "slow": 20}


def on_bar(ctx, bar):
    fast_n, slow_n = ctx.params["fast"], ctx.params["slow"]
    closes = ctx.history(slow_n + 1, as_array=True)  # a fresh float64 array, oldest first
    if len(closes) < slow_n + 1:
        return
    fast = np.convolve(closes, np.ones(fast_n) / fast_n, "valid")  # [previous, current]...
    slow = talib.SMA(closes, slow_n)
    if fast[-2] < slow[-2] and fast[-1] > slow[-1]:
        ctx.close_position()
        ctx.buy()
    elif fast[-2] > slow[-2] and fast[-1] < slow[-1]:
        ctx.close_position()
        ctx.sell()
