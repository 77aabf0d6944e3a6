from .bsmm_write_hook import BSMMWriteHook

__all__ = ['BSMMWriteHook']
