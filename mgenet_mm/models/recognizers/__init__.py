from .stgnf_recognizer import STGNFRecognizer

__all__ = ['STGNFRecognizer']
