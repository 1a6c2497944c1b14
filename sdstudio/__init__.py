"""SD Studio: a desktop studio for Stable Diffusion.

Importing this package stays cheap (no torch, no diffusers) so the window can appear
before the heavy imports finish.
"""

__version__ = "0.1.0"
