"""Django-free protocol and domain code shared by every layer and by the participant client.

The bottom of the import stack: imports no app and not Django (import-linter enforces it).
``dataspec`` (participants' data files and the task's data spec), ``eip712`` (typed data of the
on-chain protocol), ``merkle`` (round and stake Merkle trees, OpenZeppelin StandardMerkleTree leaves).
"""
