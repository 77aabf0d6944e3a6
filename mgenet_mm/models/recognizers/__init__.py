from .mgenet import MGENetRecognizer
from .stgnf_recognizer import STGNFRecognizer

__all__ = ['MGENetRecognizer', 'STGNFRecognizer']
