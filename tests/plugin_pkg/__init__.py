"""A user's plugin package, as the plugin tests load it (``--import plugin_pkg.toy``, a suite's
``imports``, or an entry point of the group ``metahyper.plugins``). Importing ``toy`` registers
a backbone and a data set; ``broken`` fails on import, for the error tests."""
