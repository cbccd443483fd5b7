"""A plugin module whose import fails, as a buggy user module would."""

raise RuntimeError("plugin_pkg.broken cannot be imported (on purpose)")
