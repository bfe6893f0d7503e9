// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {StakeToken} from "./StakeToken.sol";

/**
 * @title TaskRegistry
 * @notice Federated-learning tasks with an escrowed reward pool and one commitment per round.
 * @dev Each round is committed in ONE transaction whatever the number of participants: one storage slot per
 * round holds {roundFieldsHash} of the round's fields (global model hash, Merkle root of the round's updates with
 * leaves `(participant, updateHash, score, accepted)`, see {updateLeaf}, accepted count); the fields themselves
 * are in the RoundCommitted event and verifiable on chain with {roundHash} / {verifyUpdate}.
 *
 * Money: the escrow of a task ends in exactly one of three ways, to the wei. {finalize}: the whole reward moves
 * into the StakeToken pool of the task (`openStakes`, with the Merkle root of the holders' shares, O(1) in the
 * number of holders). {fail}: after k of R rounds, reward * k / R (floor) moves into the pool under a root the
 * platform computes from the committed rounds and the rest is refunded to the creator (k = 0: everything).
 * {cancel}: the creator takes the reward back before round 1. Refunds by {fail} are pushed with a bounded gas
 * stipend and, if the creator cannot receive, credited for {withdrawRefund}, so a creator can never block the
 * platform's call. Every ETH-moving function is `nonReentrant` and settles state before any call.
 */
contract TaskRegistry is AccessControl, ReentrancyGuardTransient {
    /// @notice Role allowed to commit rounds and finalize or fail tasks.
    bytes32 public constant PLATFORM_ROLE = keccak256("PLATFORM_ROLE");
    /// @notice Basis-point denominator for `creatorShareBps`.
    uint16 public constant MAX_BPS = 10_000;
    /// @notice Gas forwarded with a refund pushed by {fail}; a creator needing more gets it credited.
    uint256 public constant REFUND_GAS_LIMIT = 30_000;

    enum Status {
        None,
        Open,
        Finalized,
        Cancelled,
        Failed
    }

    /// @dev Storage layout: slot 0 = creator + reward, slot 1 = counters + status, then hashes.
    struct Task {
        address creator;
        uint96 reward;
        uint32 rounds;
        uint32 lastRound;
        uint16 creatorShareBps;
        Status status;
        bytes32 specHash;
        bytes32 finalModelHash;
    }

    /// @notice The stake pool receiving rewards (this contract holds its STAKES_ROLE).
    StakeToken public immutable stakeToken;

    uint256 private _taskCount;
    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 taskId => mapping(uint32 round => bytes32 fieldsHash)) private _roundHashes;
    mapping(address creator => uint256) private _refunds;

    error TaskRegistryZeroReward();
    error TaskRegistryRewardTooLarge(uint256 value);
    error TaskRegistryZeroRounds();
    error TaskRegistryInvalidShare(uint16 creatorShareBps);
    error TaskRegistryUnknownTask(uint256 taskId);
    error TaskRegistryNotOpen(uint256 taskId, Status status);
    error TaskRegistryUnexpectedRound(uint256 taskId, uint32 expected, uint32 got);
    error TaskRegistryRoundsIncomplete(uint256 taskId, uint32 committed, uint32 rounds);
    error TaskRegistryNotCreator(uint256 taskId, address caller);
    error TaskRegistryAlreadyStarted(uint256 taskId, uint32 committed);
    error TaskRegistryZeroAddress();
    error TaskRegistryZeroStakesRoot(uint256 taskId);
    error TaskRegistryUnexpectedStakesRoot(uint256 taskId);
    error TaskRegistryNothingToWithdraw(address account);

    event TaskCreated(
        uint256 indexed taskId,
        address indexed creator,
        bytes32 specHash,
        uint256 reward,
        uint32 rounds,
        uint16 creatorShareBps
    );
    event RoundCommitted(
        uint256 indexed taskId,
        uint32 indexed round,
        bytes32 globalModelHash,
        bytes32 updatesRoot,
        uint32 acceptedCount
    );
    event TaskFinalized(uint256 indexed taskId, bytes32 finalModelHash, bytes32 stakesRoot, uint256 reward);
    event TaskFailed(
        uint256 indexed taskId,
        uint32 roundsCommitted,
        bytes32 stakesRoot,
        uint256 paidToStakes,
        uint256 refunded
    );
    event TaskCancelled(uint256 indexed taskId, address indexed creator, uint256 refund);
    event RefundCredited(address indexed creator, uint256 amount);
    event RefundWithdrawn(address indexed creator, uint256 amount);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and PLATFORM_ROLE.
    /// @param stakeToken_ The StakeToken pool (must grant this contract STAKES_ROLE).
    constructor(address admin, StakeToken stakeToken_) {
        if (address(stakeToken_) == address(0)) revert TaskRegistryZeroAddress();
        stakeToken = stakeToken_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PLATFORM_ROLE, admin);
    }

    /**
     * @notice Create a task and escrow `msg.value` as its reward pool.
     * @param specHash Hash of the off-chain task specification.
     * @param rounds Number of federated rounds (> 0).
     * @param creatorShareBps Creator's share of the model stake, in basis points (<= 10000).
     * @return taskId The new task id (starts at 1).
     */
    function createTask(
        bytes32 specHash,
        uint32 rounds,
        uint16 creatorShareBps
    ) external payable returns (uint256 taskId) {
        if (msg.value == 0) revert TaskRegistryZeroReward();
        if (msg.value > type(uint96).max) revert TaskRegistryRewardTooLarge(msg.value);
        if (rounds == 0) revert TaskRegistryZeroRounds();
        if (creatorShareBps > MAX_BPS) revert TaskRegistryInvalidShare(creatorShareBps);

        taskId = ++_taskCount;
        Task storage t = _tasks[taskId];
        t.creator = msg.sender;
        t.reward = uint96(msg.value);
        t.rounds = rounds;
        t.creatorShareBps = creatorShareBps;
        t.status = Status.Open;
        t.specHash = specHash;
        emit TaskCreated(taskId, msg.sender, specHash, msg.value, rounds, creatorShareBps);
    }

    /**
     * @notice Commit round `round` of `taskId`; rounds go 1..rounds, each exactly once.
     * @dev One transaction per round whatever the participant count; stores {roundFieldsHash} of the fields in
     * one new slot, the fields go in the event.
     * @param taskId The task.
     * @param round The round number, must equal the last committed round + 1.
     * @param globalModelHash Hash of the aggregated model after the round.
     * @param updatesRoot Merkle root (sorted-pair keccak) over the round's update leaves.
     * @param acceptedCount Number of accepted updates in the round.
     */
    function commitRound(
        uint256 taskId,
        uint32 round,
        bytes32 globalModelHash,
        bytes32 updatesRoot,
        uint32 acceptedCount
    ) external onlyRole(PLATFORM_ROLE) {
        Task storage t = _openTask(taskId);
        uint32 expected = t.lastRound + 1;
        if (round != expected || round > t.rounds) revert TaskRegistryUnexpectedRound(taskId, expected, round);
        t.lastRound = round;
        _roundHashes[taskId][round] = roundFieldsHash(globalModelHash, updatesRoot, acceptedCount);
        emit RoundCommitted(taskId, round, globalModelHash, updatesRoot, acceptedCount);
    }

    /**
     * @notice Finalize a task whose rounds are all committed: the whole reward moves into the task's stake pool
     * (`StakeToken.openStakes{value: reward}(taskId, stakesRoot)`). Gas does not depend on the number of holders.
     * @param taskId The task (= stake id = ModelNFT token id).
     * @param finalModelHash Hash of the final model.
     * @param stakesRoot Merkle root of the (holder, shares) leaves, see `StakeToken.stakeLeaf`.
     */
    function finalize(
        uint256 taskId,
        bytes32 finalModelHash,
        bytes32 stakesRoot
    ) external onlyRole(PLATFORM_ROLE) nonReentrant {
        if (stakesRoot == bytes32(0)) revert TaskRegistryZeroStakesRoot(taskId);
        Task storage t = _openTask(taskId);
        if (t.lastRound != t.rounds) revert TaskRegistryRoundsIncomplete(taskId, t.lastRound, t.rounds);

        uint256 reward = t.reward;
        t.reward = 0;
        t.status = Status.Finalized;
        t.finalModelHash = finalModelHash;
        emit TaskFinalized(taskId, finalModelHash, stakesRoot, reward);

        stakeToken.openStakes{value: reward}(taskId, stakesRoot);
    }

    /**
     * @notice Fail an open task. With k of R rounds committed, reward * k / R (floor, wei) moves into the task's
     * stake pool under `stakesRoot` (contributors of the committed rounds) and the rest is refunded to the
     * creator; k = 0: `stakesRoot` must be zero and everything is refunded. The refund is pushed with
     * REFUND_GAS_LIMIT gas and credited for {withdrawRefund} if that transfer fails.
     * @param taskId The task.
     * @param stakesRoot Root of the committed rounds' contributors' shares (zero iff no round was committed).
     */
    function fail(uint256 taskId, bytes32 stakesRoot) external onlyRole(PLATFORM_ROLE) nonReentrant {
        Task storage t = _openTask(taskId);
        uint32 k = t.lastRound;
        if (k == 0 && stakesRoot != bytes32(0)) revert TaskRegistryUnexpectedStakesRoot(taskId);
        if (k != 0 && stakesRoot == bytes32(0)) revert TaskRegistryZeroStakesRoot(taskId);

        uint256 reward = t.reward;
        uint256 paid = (reward * k) / t.rounds;
        uint256 refund = reward - paid;
        address creator = t.creator;
        t.reward = 0;
        t.status = Status.Failed;
        emit TaskFailed(taskId, k, stakesRoot, paid, refund);

        if (k != 0) stakeToken.openStakes{value: paid}(taskId, stakesRoot);
        if (refund != 0) _pushRefund(creator, refund);
    }

    /**
     * @notice Cancel an open task before its first round is committed and refund the creator (pushed: the
     * creator is the caller).
     * @param taskId The task.
     */
    function cancel(uint256 taskId) external nonReentrant {
        Task storage t = _openTask(taskId);
        if (t.creator != msg.sender) revert TaskRegistryNotCreator(taskId, msg.sender);
        if (t.lastRound != 0) revert TaskRegistryAlreadyStarted(taskId, t.lastRound);

        uint256 refund = t.reward;
        t.reward = 0;
        t.status = Status.Cancelled;
        emit TaskCancelled(taskId, msg.sender, refund);

        Address.sendValue(payable(msg.sender), refund);
    }

    /// @notice Withdraw the refunds credited to the caller by {fail} (wei).
    function withdrawRefund() external nonReentrant {
        uint256 amount = _refunds[msg.sender];
        if (amount == 0) revert TaskRegistryNothingToWithdraw(msg.sender);
        _refunds[msg.sender] = 0;
        emit RefundWithdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    /// @notice Refunds credited to `account` and not yet withdrawn (wei).
    function refundOf(address account) external view returns (uint256) {
        return _refunds[account];
    }

    /// @notice The task record (reverts for an unknown id).
    function getTask(uint256 taskId) external view returns (Task memory) {
        Task storage t = _tasks[taskId];
        if (t.status == Status.None) revert TaskRegistryUnknownTask(taskId);
        return t;
    }

    /// @notice Number of tasks created so far (= the latest task id).
    function taskCount() external view returns (uint256) {
        return _taskCount;
    }

    /// @notice {roundFieldsHash} stored for `round` of `taskId` (zero if not committed).
    function roundHash(uint256 taskId, uint32 round) external view returns (bytes32) {
        return _roundHashes[taskId][round];
    }

    /// @notice keccak256(abi.encode(globalModelHash, updatesRoot, acceptedCount)): what a round stores.
    function roundFieldsHash(
        bytes32 globalModelHash,
        bytes32 updatesRoot,
        uint32 acceptedCount
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(globalModelHash, updatesRoot, acceptedCount));
    }

    /**
     * @notice Leaf of an updates tree: keccak256(keccak256(abi.encode(participant, updateHash, score, accepted)))
     * (the OpenZeppelin StandardMerkleTree leaf encoding).
     */
    function updateLeaf(
        address participant,
        bytes32 updateHash,
        uint256 score,
        bool accepted
    ) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(participant, updateHash, score, accepted))));
    }

    /**
     * @notice Prove that an update is included in round `round` of `taskId`: (globalModelHash, updatesRoot,
     * acceptedCount) must be the committed round's fields (as in its RoundCommitted event) and `proof` must lead
     * from the update's leaf to `updatesRoot`. False otherwise (also for a round not committed).
     */
    function verifyUpdate(
        uint256 taskId,
        uint32 round,
        bytes32 globalModelHash,
        bytes32 updatesRoot,
        uint32 acceptedCount,
        address participant,
        bytes32 updateHash,
        uint256 score,
        bool accepted,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 stored = _roundHashes[taskId][round];
        if (stored == bytes32(0)) return false;
        if (stored != roundFieldsHash(globalModelHash, updatesRoot, acceptedCount)) return false;
        return MerkleProof.verifyCalldata(proof, updatesRoot, updateLeaf(participant, updateHash, score, accepted));
    }

    function _pushRefund(address creator, uint256 amount) private {
        bool ok;
        assembly ("memory-safe") {
            ok := call(REFUND_GAS_LIMIT, creator, amount, 0, 0, 0, 0)
        }
        if (!ok) {
            _refunds[creator] += amount;
            emit RefundCredited(creator, amount);
        }
    }

    function _openTask(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status != Status.Open) {
            if (t.status == Status.None) revert TaskRegistryUnknownTask(taskId);
            revert TaskRegistryNotOpen(taskId, t.status);
        }
    }
}
