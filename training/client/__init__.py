"""Participant side of BCFL federated training (SuperNode + warm ClientApp launcher).

Kept import-light on purpose: nothing here imports torch, flwr or Django. Use
``training.client.supernode`` to start a participant's SuperNode and
``python -m training.client.launcher`` for the warm ClientApp launcher.
"""
