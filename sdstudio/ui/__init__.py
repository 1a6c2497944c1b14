"""Widgets, the async controller and the gallery view. Only app.py imports this package."""
