// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/**
 * @title IdentityRegistry
 * @notice Bans by identity (a DID hash: did:pkh of a wallet, or a uniqueness-credential nullifier), not only by
 * wallet, so a banned person's other wallets stay banned.
 */
contract IdentityRegistry is AccessControl {
    /// @notice Role allowed to ban and lift.
    bytes32 public constant BANNER_ROLE = keccak256("BANNER_ROLE");

    struct Ban {
        uint64 bannedAt;
        uint64 expiresAt; // 0 = permanent
        bool active; // false once lifted
        uint256 taskId; // task in which the offence happened (0 = none)
        bytes32 evidenceHash;
    }

    mapping(bytes32 identity => Ban) private _bans;

    error IdentityRegistryInvalidExpiry(uint64 expiresAt, uint256 nowTs);
    error IdentityRegistryNotBanned(bytes32 identity);

    event IdentityBanned(
        bytes32 indexed identity,
        uint256 indexed taskId,
        bytes32 evidenceHash,
        uint64 expiresAt,
        address indexed by
    );
    event BanLifted(bytes32 indexed identity, bytes32 reasonHash, address indexed by);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and BANNER_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(BANNER_ROLE, admin);
    }

    /**
     * @notice Ban `identity` (or replace its current ban).
     * @param identity Identity hash.
     * @param taskId Task in which the offence happened (0 if none).
     * @param evidenceHash Hash of the off-chain evidence.
     * @param expiresAt Unix time the ban ends; 0 for permanent, otherwise must be in the future.
     */
    function ban(
        bytes32 identity,
        uint256 taskId,
        bytes32 evidenceHash,
        uint64 expiresAt
    ) external onlyRole(BANNER_ROLE) {
        if (expiresAt != 0 && expiresAt <= block.timestamp) {
            revert IdentityRegistryInvalidExpiry(expiresAt, block.timestamp);
        }
        _bans[identity] = Ban({
            bannedAt: uint64(block.timestamp),
            expiresAt: expiresAt,
            active: true,
            taskId: taskId,
            evidenceHash: evidenceHash
        });
        emit IdentityBanned(identity, taskId, evidenceHash, expiresAt, msg.sender);
    }

    /**
     * @notice Lift the current ban on `identity`.
     * @param identity Identity hash.
     * @param reasonHash Hash of the off-chain reason.
     */
    function lift(bytes32 identity, bytes32 reasonHash) external onlyRole(BANNER_ROLE) {
        if (!isBanned(identity)) revert IdentityRegistryNotBanned(identity);
        _bans[identity].active = false;
        emit BanLifted(identity, reasonHash, msg.sender);
    }

    /// @notice Whether `identity` is banned now (active and not expired).
    function isBanned(bytes32 identity) public view returns (bool) {
        Ban storage b = _bans[identity];
        return b.active && (b.expiresAt == 0 || block.timestamp < b.expiresAt);
    }

    /// @notice The last ban record of `identity` (all zero if never banned).
    function banOf(bytes32 identity) external view returns (Ban memory) {
        return _bans[identity];
    }
}
