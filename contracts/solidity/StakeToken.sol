// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/**
 * @title StakeToken
 * @notice ERC-1155 stake pool: id = ModelNFT token id, amounts = shares (TOTAL_SHARES per id, minted once).
 * Revenue (royalties, licences, task rewards) is deposited per id and paid out pro rata to shareholders.
 * @dev "Magnified dividend" accounting per id: a cumulative revenue-per-share (scaled by 2**128) plus a signed
 * per-account correction adjusted in {_update} on every mint/transfer, so a deposit is O(1), a claim is O(1) and
 * transfers never move already-earned revenue. claimable = (perShare * balance + correction) / 2**128 - withdrawn.
 * Plain ETH (e.g. ERC-2981 royalties paid by third parties, or a TaskRegistry reward pool) arrives without an id:
 * {receive} books it as unallocated and PAYOUT_ROLE assigns it to an id with {allocateRevenue}.
 */
contract StakeToken is ERC1155, AccessControl, ReentrancyGuardTransient {
    using SafeCast for uint256;
    using SafeCast for int256;

    /// @notice Role allowed to mint shares.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice Role allowed to push payouts and allocate unallocated revenue.
    bytes32 public constant PAYOUT_ROLE = keccak256("PAYOUT_ROLE");
    /// @notice Shares minted per id.
    uint256 public constant TOTAL_SHARES = 10_000;
    /// @notice Gas forwarded to each holder by {pushPayouts}.
    uint256 public constant PUSH_GAS_LIMIT = 50_000;
    uint256 private constant MAGNITUDE = 2 ** 128;

    mapping(uint256 id => bool) private _minted;
    mapping(uint256 id => uint256) private _magnifiedPerShare;
    mapping(uint256 id => uint256) private _totalDeposited;
    mapping(uint256 id => mapping(address account => int256)) private _corrections;
    mapping(uint256 id => mapping(address account => uint256)) private _withdrawn;
    uint256 private _unallocated;

    error StakeTokenAlreadyMinted(uint256 id);
    error StakeTokenNotMinted(uint256 id);
    error StakeTokenLengthMismatch(uint256 holders, uint256 amounts);
    error StakeTokenNoHolders();
    error StakeTokenInvalidTotal(uint256 sum, uint256 expected);
    error StakeTokenZeroValue();
    error StakeTokenInsufficientUnallocated(uint256 requested, uint256 available);

    event SharesMinted(uint256 indexed id, uint256 holders, uint256 totalShares);
    event RevenueDeposited(uint256 indexed id, address indexed from, uint256 amount);
    event RevenueReceived(address indexed from, uint256 amount);
    event RevenueAllocated(uint256 indexed id, uint256 amount);
    event DividendClaimed(uint256 indexed id, address indexed account, uint256 amount);
    event PayoutPushed(uint256 indexed id, address indexed account, uint256 amount);
    event PayoutFailed(uint256 indexed id, address indexed account, uint256 amount);
    event URIUpdated(string uri);

    /// @param admin Receives DEFAULT_ADMIN_ROLE, MINTER_ROLE and PAYOUT_ROLE.
    /// @param uri_ ERC-1155 metadata URI template (with `{id}`).
    constructor(address admin, string memory uri_) ERC1155(uri_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
        _grantRole(PAYOUT_ROLE, admin);
        emit URIUpdated(uri_);
    }

    /// @notice Books plain ETH as unallocated revenue (see {allocateRevenue}).
    receive() external payable {
        _unallocated += msg.value;
        emit RevenueReceived(msg.sender, msg.value);
    }

    /**
     * @notice Mint the TOTAL_SHARES shares of `id` once.
     * @param id Model token id.
     * @param holders Share holders (duplicates add up).
     * @param amounts Shares per holder; must sum to TOTAL_SHARES.
     */
    function mintShares(
        uint256 id,
        address[] calldata holders,
        uint256[] calldata amounts
    ) external onlyRole(MINTER_ROLE) {
        if (_minted[id]) revert StakeTokenAlreadyMinted(id);
        if (holders.length != amounts.length) revert StakeTokenLengthMismatch(holders.length, amounts.length);
        if (holders.length == 0) revert StakeTokenNoHolders();
        uint256 sum;
        for (uint256 i; i < amounts.length; ++i) {
            sum += amounts[i];
        }
        if (sum != TOTAL_SHARES) revert StakeTokenInvalidTotal(sum, TOTAL_SHARES);

        _minted[id] = true;
        emit SharesMinted(id, holders.length, TOTAL_SHARES);
        for (uint256 i; i < holders.length; ++i) {
            if (amounts[i] != 0) _mint(holders[i], id, amounts[i], "");
        }
    }

    /**
     * @notice Deposit `msg.value` as revenue of `id`, shared pro rata by current holders. O(1).
     * @param id Model token id (shares must be minted).
     */
    function depositRevenue(uint256 id) external payable {
        if (msg.value == 0) revert StakeTokenZeroValue();
        _distribute(id, msg.value);
        emit RevenueDeposited(id, msg.sender, msg.value);
    }

    /**
     * @notice Assign `amount` of the unallocated balance (plain ETH received) to `id`.
     * @param id Model token id (shares must be minted).
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
     * @param id Model token id.
     * @return amount Wei sent to the caller.
     */
    function claim(uint256 id) external nonReentrant returns (uint256 amount) {
        amount = claimable(id, msg.sender);
        if (amount == 0) return 0;
        _withdrawn[id][msg.sender] += amount;
        emit DividendClaimed(id, msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    /**
     * @notice Push each holder's claimable revenue of `id` (batch for workers). A holder whose transfer fails
     * (reverting receive or out of the PUSH_GAS_LIMIT stipend) is skipped, keeps its claim and gets PayoutFailed.
     * @param id Model token id.
     * @param holders Accounts to pay (callers keep batches within the block gas limit).
     */
    function pushPayouts(uint256 id, address[] calldata holders) external onlyRole(PAYOUT_ROLE) nonReentrant {
        for (uint256 i; i < holders.length; ++i) {
            address holder = holders[i];
            uint256 amount = claimable(id, holder);
            if (amount == 0) continue;
            _withdrawn[id][holder] += amount;
            bool ok;
            assembly ("memory-safe") {
                ok := call(PUSH_GAS_LIMIT, holder, amount, 0, 0, 0, 0)
            }
            if (ok) {
                emit PayoutPushed(id, holder, amount);
            } else {
                _withdrawn[id][holder] -= amount;
                emit PayoutFailed(id, holder, amount);
            }
        }
    }

    /// @notice Set the ERC-1155 metadata URI template.
    function setURI(string calldata uri_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setURI(uri_);
        emit URIUpdated(uri_);
    }

    /// @notice Revenue of `id` that `account` can claim now.
    function claimable(uint256 id, address account) public view returns (uint256) {
        return accumulated(id, account) - _withdrawn[id][account];
    }

    /// @notice Total revenue of `id` ever earned by `account` (claimed or not).
    function accumulated(uint256 id, address account) public view returns (uint256) {
        int256 magnified = (_magnifiedPerShare[id] * balanceOf(account, id)).toInt256() +
            _corrections[id][account];
        return magnified.toUint256() / MAGNITUDE;
    }

    /// @notice Revenue of `id` already withdrawn by `account`.
    function withdrawn(uint256 id, address account) external view returns (uint256) {
        return _withdrawn[id][account];
    }

    /// @notice Total revenue ever deposited or allocated to `id`.
    function totalDeposited(uint256 id) external view returns (uint256) {
        return _totalDeposited[id];
    }

    /// @notice Whether the shares of `id` have been minted.
    function sharesMinted(uint256 id) external view returns (bool) {
        return _minted[id];
    }

    /// @notice Plain ETH received and not yet allocated to an id.
    function unallocatedRevenue() external view returns (uint256) {
        return _unallocated;
    }

    /// @inheritdoc ERC1155
    function supportsInterface(bytes4 interfaceId) public view override(ERC1155, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    function _distribute(uint256 id, uint256 amount) private {
        if (!_minted[id]) revert StakeTokenNotMinted(id);
        _magnifiedPerShare[id] += (amount * MAGNITUDE) / TOTAL_SHARES;
        _totalDeposited[id] += amount;
    }

    /// @dev Keeps accumulated revenue with its earner: the sender's correction rises, the receiver's falls.
    function _update(address from, address to, uint256[] memory ids, uint256[] memory values) internal override {
        super._update(from, to, ids, values);
        for (uint256 i; i < ids.length; ++i) {
            uint256 perShare = _magnifiedPerShare[ids[i]];
            if (perShare == 0) continue;
            int256 delta = (perShare * values[i]).toInt256();
            if (from != address(0)) _corrections[ids[i]][from] += delta;
            if (to != address(0)) _corrections[ids[i]][to] -= delta;
        }
    }
}
