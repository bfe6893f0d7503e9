// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/**
 * @title ERC1271Wallet (test only)
 * @notice A minimal smart-contract wallet for the sign-in tests (EIP-1271): a signature over a hash is valid when
 * its owner signed that hash (the owner may itself be an EOA or another EIP-1271 contract, via OpenZeppelin's
 * SignatureChecker). Anything else gets 0xffffffff, never a revert, as EIP-1271 recommends.
 */
contract ERC1271Wallet is IERC1271 {
    bytes4 private constant _INVALID = 0xffffffff;

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    /// @dev EIP-1271: `IERC1271.isValidSignature.selector` (0x1626ba7e) when `owner` signed `hash`.
    /// @param hash The signed digest (for a SIWE message: its EIP-191 personal_sign hash).
    /// @param signature The owner's signature over `hash`.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        return SignatureChecker.isValidSignatureNow(owner, hash, signature)
            ? IERC1271.isValidSignature.selector
            : _INVALID;
    }
}
