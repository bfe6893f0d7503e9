"""Sign-in with a smart-contract wallet (EIP-1271), e.g. a Safe: the wallet contract judges the signature.

Used by `bcfl_site.siwe.services` after EOA recovery failed. The hash the wallet is asked about is the EIP-191
``personal_sign`` hash of the exact EIP-4361 text (``keccak256("\\x19Ethereum Signed Message:\\n" + len +
message)``), the same hash the ``siwe`` library's own EIP-1271 path passes; the call goes through
`contracts.chain` (the only web3 user) on the configured chain (`CHAIN_RPC_URL`, `CHAIN_ID`).

Why not ``SiweMessage.verify(provider=...)``: it returns one `InvalidSignature` for "not a contract", "the
wallet said no" and "the call reverted", and lets a node's connection errors escape as they are; a person
signing in must be told which of these happened.
"""

from __future__ import annotations

from django.conf import settings
from eth_account.messages import defunct_hash_message

from contracts import chain

# A bytes4 return value is ABI-encoded as one 32-byte word, left-aligned.
_MAGIC_WORD = chain.EIP1271_MAGIC_VALUE + bytes(28)


class ContractWalletRefusal(Exception):
    """The contract wallet did not accept the signature, or could not be asked; ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unreachable(address: str, why: str) -> ContractWalletRefusal:
    return ContractWalletRefusal(
        "chain_unavailable",
        f"The signature was not made by {address} with an ordinary key, and the platform could not ask the "
        f"chain whether {address} is a smart-contract wallet that accepts it ({why}). Please try again later.",
    )


def contract_wallet_accepts(*, address: str, message: str, signature: bytes) -> bool:
    """Ask the contract at ``address`` whether ``signature`` over ``message`` (the EIP-4361 text) is valid.

    Returns True when it answers the EIP-1271 magic value 0x1626ba7e, False when ``address`` has no code (an
    externally owned account: the caller's "wrong signer" refusal applies). Raises `ContractWalletRefusal`
    with code ``contract_wallet_invalid`` (it answered something else), ``contract_wallet_reverted`` (the call
    reverted: not an EIP-1271 wallet, or it refuses by reverting) or ``chain_unavailable`` (the node is
    unreachable or is on another chain than ``CHAIN_ID``).
    """
    try:
        if not chain.has_code(address):
            return False
        node_chain_id = chain.actual_chain_id()
    except chain.ChainError as exc:
        raise _unreachable(address, f"the node did not answer: {exc}") from None
    if node_chain_id != settings.CHAIN_ID:
        raise _unreachable(address, f"its node is on chain id {node_chain_id}, not {settings.CHAIN_ID}")
    try:
        answer = chain.eip1271_call(address, bytes(defunct_hash_message(text=message)), signature)
    except chain.ChainRevert as exc:
        raise ContractWalletRefusal(
            "contract_wallet_reverted",
            f"The contract at {address} refused the signature check: isValidSignature reverted "
            f"({exc.reason}). It is not an EIP-1271 smart-contract wallet, or it does not accept this signature.",
        ) from None
    except chain.ChainError as exc:
        raise _unreachable(address, f"the call failed: {exc}") from None
    if answer[:32] == _MAGIC_WORD:
        return True
    shown = "0x" + answer[:4].hex() if len(answer) >= 32 else f"{len(answer)} bytes"
    raise ContractWalletRefusal(
        "contract_wallet_invalid",
        f"The smart-contract wallet {address} did not accept this signature: isValidSignature answered "
        f"{shown}, not the EIP-1271 magic value 0x1626ba7e. Sign with an owner of the wallet.",
    )
