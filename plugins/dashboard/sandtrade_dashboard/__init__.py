"""The dashboard: watch the host live in a browser, as a sandtrade plugin (see :mod:`.plugin`)."""
