"""The namespace runtime: forkserver -> one shim per container -> container init.

This package's modules that run in the forkserver, the shims and the
containers import only the standard library (see spawner.py); only
runtime.py, the agent's side, may import the rest of kran.
"""
