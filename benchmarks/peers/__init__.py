"""Peer simulators (Brian2, NEST) running the very network torchsnn runs, each in its own virtual environment.

``runner`` (harness side, imports torchsnn) exports the network and calls the peer scripts
(``brian2_brunel.py``, ``nest_brunel.py``: numpy only, run by the peer's interpreter) in subprocesses.
"""
