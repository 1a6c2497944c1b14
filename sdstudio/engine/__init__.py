"""The headless engine: requests in, events out. Never imports Qt.

Import submodules directly (`sdstudio.engine.request`, `sdstudio.engine.runner`);
this package itself imports nothing heavy.
"""
