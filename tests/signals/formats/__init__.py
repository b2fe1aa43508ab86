"""How signal bodies become commands: the formats of :mod:`sandtrade.signals.formats`, one
test module per module of the package.

Unit tests of ``FormatRegistry.default()`` and its ``parse(body, fmt=None)``; no host is
started. Each format gets its accepted shapes, then the rejections a person writing an alert by
hand actually produces (see ``/work/shared/research/tradingview.md``): unexpanded placeholders,
numbers in quotes, decimal commas, trailing commas, single quotes... For every rejection the
test checks both the message (what is wrong) and ``SignalError.field`` (where).
"""
