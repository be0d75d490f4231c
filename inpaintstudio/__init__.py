"""InpaintStudio: a local inpainting studio with research models implemented in PyTorch."""

__version__ = "0.1.0"
