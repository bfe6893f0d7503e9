// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title StakeToken
 * @notice ERC-1155 stake pool: id = task id = ModelNFT token id, amounts = shares (TOTAL_SHARES per id).
 * The shares of an id are committed as ONE Merkle root of (holder, shares) leaves by {openStakes} (called by the
 * TaskRegistry in its finalize/fail transaction, so its cost does not depend on the number of holders); each
 * holder's shares are minted to it by {claimShares} with a proof (anyone may send it; the platform batches them
 * with {claimSharesBatch}). The platform guarantees off chain that the leaves of an id sum to TOTAL_SHARES.
 * Revenue (task rewards, royalties, licences) is deposited per id in O(1) and paid out pro rata.
 * @dev Exact dividend accounting per id: `deposited` is the revenue ever booked to the id; every account has a
 * signed correction (in wei x shares) moved by transfers, so
 *   accumulated(account) = floor((deposited * balance + correction) / TOTAL_SHARES).
 * Mints by {claimShares} get no correction: revenue per share is over TOTAL_SHARES from the start, so revenue
 * deposited before a holder's claim is theirs. The numerator of an account only grows (by deposit x balance), so
 * what it earned is never lost by transfers. Rounding: the only loss is the final floor, so at any time
 * deposited = sum(accumulated) + deposited * unclaimedShares / TOTAL_SHARES + dust, with dust < the number of
 * accounts that ever held shares of the id plus one (independent of the number of deposits).
 * Shares are minted without the ERC-1155 receiver hook (as in a Merkle airdrop, the recipient is fixed by the
 * root): a holder contract can neither block nor grief a platform batch.
 * Plain ETH (ERC-2981 royalties paid by third parties) arrives without an id: {receive} books it as unallocated
 * and PAYOUT_ROLE assigns it to an id with {allocateRevenue}.
 */
contract StakeToken is ERC1155, AccessControl, ReentrancyGuardTransient {
    using SafeCast for uint256;

    /// @notice Role allowed to open the stakes of an id (the TaskRegistry).
    bytes32 public constant STAKES_ROLE = keccak256("STAKES_ROLE");
    /// @notice Role allowed to push payouts and allocate unallocated revenue.
    bytes32 public constant PAYOUT_ROLE = keccak256("PAYOUT_ROLE");
    /// @notice Shares per id (sum of the leaves of its stakes root).
    uint256 public constant TOTAL_SHARES = 10_000;
    /// @notice Gas forwarded to each holder by {pushPayouts}.
    uint256 public constant PUSH_GAS_LIMIT = 50_000;

    /// @dev One slot per id: revenue booked (wei) and whether the stakes are open.
    struct Pool {
        uint128 deposited;
        bool opened;
    }

    /// @dev One slot per (id, account): revenue withdrawn (wei) and whether its leaf was claimed.
    struct Account {
        uint128 withdrawn;
        bool sharesClaimed;
    }

    mapping(uint256 id => Pool) private _pools;
    mapping(uint256 id => bytes32) private _roots;
    mapping(uint256 id => mapping(address account => Account)) private _accounts;
    mapping(uint256 id => mapping(address account => int256)) private _corrections;
    uint256 private _unallocated;

    error StakeTokenAlreadyOpened(uint256 id);
    error StakeTokenNotOpened(uint256 id);
    error StakeTokenZeroRoot();
    error StakeTokenSharesAlreadyClaimed(uint256 id, address holder);
    error StakeTokenInvalidProof(uint256 id, address holder, uint256 shares);
    error StakeTokenLengthMismatch(uint256 holders, uint256 shares, uint256 proofs);
    error StakeTokenZeroValue();
    error StakeTokenInsufficientUnallocated(uint256 requested, uint256 available);

    event StakesOpened(uint256 indexed id, bytes32 stakesRoot, uint256 reward);
    event SharesClaimed(uint256 indexed id, address indexed holder, uint256 shares);
    event RevenueDeposited(uint256 indexed id, address indexed from, uint256 amount);
    event RevenueReceived(address indexed from, uint256 amount);
    event RevenueAllocated(uint256 indexed id, uint256 amount);
    event DividendClaimed(uint256 indexed id, address indexed account, uint256 amount);
    event PayoutPushed(uint256 indexed id, address indexed account, uint256 amount);
    event PayoutFailed(uint256 indexed id, address indexed account, uint256 amount);
    event URIUpdated(string uri);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and PAYOUT_ROLE (STAKES_ROLE is granted to the TaskRegistry).
    /// @param uri_ ERC-1155 metadata URI template (with `{id}`).
    constructor(address admin, string memory uri_) ERC1155(uri_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAYOUT_ROLE, admin);
        emit URIUpdated(uri_);
    }

    /// @notice Books plain ETH as unallocated revenue (see {allocateRevenue}).
    receive() external payable {
        _unallocated += msg.value;
        emit RevenueReceived(msg.sender, msg.value);
    }

    /**
     * @notice Open the stakes of `id` once: commit the Merkle root of its (holder, shares) leaves and book
     * `msg.value` (may be 0) as its first revenue. O(1) in the number of holders.
     * @param id Task id (= ModelNFT token id).
     * @param root Root over {stakeLeaf} leaves (OpenZeppelin StandardMerkleTree, ["address","uint256"]).
     */
    function openStakes(uint256 id, bytes32 root) external payable onlyRole(STAKES_ROLE) {
        if (root == bytes32(0)) revert StakeTokenZeroRoot();
        Pool storage p = _pools[id];
        if (p.opened) revert StakeTokenAlreadyOpened(id);
        p.opened = true;
        p.deposited = msg.value.toUint128();
        _roots[id] = root;
        emit StakesOpened(id, root, msg.value);
    }

    /**
     * @notice Mint `holder`'s shares of `id` (never to the caller) given its leaf's proof; once per (id, holder).
     * Revenue deposited before this claim is the holder's.
     * @param id Stake id.
     * @param holder Account of the leaf.
     * @param shares Shares of the leaf.
     * @param proof Sibling hashes from the leaf to the stakes root.
     */
    function claimShares(uint256 id, address holder, uint256 shares, bytes32[] calldata proof) external {
        bytes32 root = _openedRoot(id);
        if (_accounts[id][holder].sharesClaimed) revert StakeTokenSharesAlreadyClaimed(id, holder);
        _claimShares(id, root, holder, shares, proof);
    }

    /**
     * @notice {claimShares} for many holders (platform batches, kept within the block gas limit by the caller).
     * Already-claimed holders are skipped (a retried batch is harmless); a bad proof reverts the batch.
     * @return claimed Number of holders whose shares were minted by this call.
     */
    function claimSharesBatch(
        uint256 id,
        address[] calldata holders,
        uint256[] calldata shares,
        bytes32[][] calldata proofs
    ) external returns (uint256 claimed) {
        if (holders.length != shares.length || holders.length != proofs.length) {
            revert StakeTokenLengthMismatch(holders.length, shares.length, proofs.length);
        }
        bytes32 root = _openedRoot(id);
        for (uint256 i; i < holders.length; ++i) {
            if (_accounts[id][holders[i]].sharesClaimed) continue;
            _claimShares(id, root, holders[i], shares[i], proofs[i]);
            ++claimed;
        }
    }

    /**
     * @notice Deposit `msg.value` as revenue of `id`, shared pro rata over TOTAL_SHARES. O(1).
     * @param id Stake id (stakes must be open).
     */
    function depositRevenue(uint256 id) external payable {
        if (msg.value == 0) revert StakeTokenZeroValue();
        _distribute(id, msg.value);
        emit RevenueDeposited(id, msg.sender, msg.value);
    }

    /**
     * @notice Assign `amount` of the unallocated balance (plain ETH received) to `id`.
     * @param id Stake id (stakes must be open).
     * @param amount Wei to allocate.
     */
    function allocateRevenue(uint256 id, uint256 amount) external onlyRole(PAYOUT_ROLE) {
        if (amount == 0) revert StakeTokenZeroValue();
        uint256 available = _unallocated;
        if (amount > available) revert StakeTokenInsufficientUnallocated(amount, available);
        _unallocated = available - amount;
        _distribute(id, amount);
        emit RevenueAllocated(id, amount);
    }

    /**
     * @notice Withdraw the caller's claimable revenue of `id`. O(1); returns 0 (no transfer) if nothing is due.
     * @param id Stake id.
     * @return amount Wei sent to the caller.
     */
    function claim(uint256 id) external nonReentrant returns (uint256 amount) {
        amount = claimable(id, msg.sender);
        if (amount == 0) return 0;
        Account storage a = _accounts[id][msg.sender];
        a.withdrawn = (a.withdrawn + amount).toUint128();
        emit DividendClaimed(id, msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    /**
     * @notice Push each holder's claimable revenue of `id` (batch for workers). A holder whose transfer fails
     * (reverting receive or out of the PUSH_GAS_LIMIT stipend) is skipped, keeps its claim and gets PayoutFailed.
     * @param id Stake id.
     * @param holders Accounts to pay (callers keep batches within the block gas limit).
     */
    function pushPayouts(uint256 id, address[] calldata holders) external onlyRole(PAYOUT_ROLE) nonReentrant {
        for (uint256 i; i < holders.length; ++i) {
            address holder = holders[i];
            uint256 amount = claimable(id, holder);
            if (amount == 0) continue;
            Account storage a = _accounts[id][holder];
            uint128 before = a.withdrawn;
            a.withdrawn = (before + amount).toUint128();
            bool ok;
            assembly ("memory-safe") {
                ok := call(PUSH_GAS_LIMIT, holder, amount, 0, 0, 0, 0)
            }
            if (ok) {
                emit PayoutPushed(id, holder, amount);
            } else {
                a.withdrawn = before;
                emit PayoutFailed(id, holder, amount);
            }
        }
    }

    /// @notice Set the ERC-1155 metadata URI template.
    function setURI(string calldata uri_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setURI(uri_);
        emit URIUpdated(uri_);
    }

    /// @notice Leaf of a stakes tree: keccak256(keccak256(abi.encode(holder, shares))) (StandardMerkleTree).
    function stakeLeaf(address holder, uint256 shares) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(holder, shares))));
    }

    /// @notice Revenue of `id` that `account` can claim now (wei).
    function claimable(uint256 id, address account) public view returns (uint256) {
        return accumulated(id, account) - _accounts[id][account].withdrawn;
    }

    /// @notice Total revenue of `id` ever earned by `account`, claimed or not (wei).
    function accumulated(uint256 id, address account) public view returns (uint256) {
        int256 numerator = (uint256(_pools[id].deposited) * balanceOf(account, id)).toInt256() +
            _corrections[id][account];
        return uint256(numerator) / TOTAL_SHARES;
    }

    /// @notice Revenue of `id` already withdrawn by `account` (wei).
    function withdrawn(uint256 id, address account) external view returns (uint256) {
        return _accounts[id][account].withdrawn;
    }

    /// @notice Total revenue ever booked to `id`, the reward included (wei).
    function totalDeposited(uint256 id) external view returns (uint256) {
        return _pools[id].deposited;
    }

    /// @notice The stakes root of `id` (zero if its stakes are not open).
    function stakesRoot(uint256 id) external view returns (bytes32) {
        return _roots[id];
    }

    /// @notice Whether `holder`'s leaf of `id` has been claimed.
    function sharesClaimed(uint256 id, address holder) external view returns (bool) {
        return _accounts[id][holder].sharesClaimed;
    }

    /// @notice Plain ETH received and not yet allocated to an id (wei).
    function unallocatedRevenue() external view returns (uint256) {
        return _unallocated;
    }

    /// @inheritdoc ERC1155
    function supportsInterface(bytes4 interfaceId) public view override(ERC1155, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    function _openedRoot(uint256 id) private view returns (bytes32 root) {
        root = _roots[id];
        if (root == bytes32(0)) revert StakeTokenNotOpened(id);
    }

    function _claimShares(
        uint256 id,
        bytes32 root,
        address holder,
        uint256 shares,
        bytes32[] calldata proof
    ) private {
        if (!MerkleProof.verifyCalldata(proof, root, stakeLeaf(holder, shares))) {
            revert StakeTokenInvalidProof(id, holder, shares);
        }
        _accounts[id][holder].sharesClaimed = true;
        emit SharesClaimed(id, holder, shares);
        uint256[] memory ids = new uint256[](1);
        uint256[] memory values = new uint256[](1);
        ids[0] = id;
        values[0] = shares;
        _update(address(0), holder, ids, values); // no receiver hook (see the contract's @dev)
    }

    function _distribute(uint256 id, uint256 amount) private {
        Pool storage p = _pools[id];
        if (!p.opened) revert StakeTokenNotOpened(id);
        p.deposited = (p.deposited + amount).toUint128();
    }

    /// @dev Transfers keep earned revenue with its earner: the sender's correction rises, the receiver's falls,
    /// by deposited x value. Mints (share claims) get none: their holders own the revenue since the opening.
    function _update(address from, address to, uint256[] memory ids, uint256[] memory values) internal override {
        super._update(from, to, ids, values);
        if (from == address(0)) return;
        for (uint256 i; i < ids.length; ++i) {
            int256 delta = (uint256(_pools[ids[i]].deposited) * values[i]).toInt256();
            if (delta == 0) continue;
            _corrections[ids[i]][from] += delta;
            if (to != address(0)) _corrections[ids[i]][to] -= delta;
        }
    }
}
