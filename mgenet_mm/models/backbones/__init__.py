from .stgnf import STGNF  # noqa: F401
