// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title TaskRegistry
 * @notice Federated-learning tasks with an escrowed reward pool and one commitment per round.
 * @dev Each round is committed in ONE transaction whatever the number of participants: only the Merkle root of
 * the round's updates is stored (leaves `(participant, updateHash, score, accepted)`, see {updateLeaf}) plus a
 * running hash chain over every committed round, so gas does not depend on the participant count.
 *
 * Payout design: {finalize} and {cancel} transfer the escrow directly (push) to a single recipient, guarded by
 * `nonReentrant` and written checks-effects-interactions (state is settled before the call). A pull pattern buys
 * nothing here: there is exactly one recipient per task, chosen by the platform (the stake pool) or the creator
 * itself, and a failing recipient reverts the whole call, so the escrow stays intact and can be retried.
 */
contract TaskRegistry is AccessControl, ReentrancyGuardTransient {
    /// @notice Role allowed to commit rounds and finalize tasks.
    bytes32 public constant PLATFORM_ROLE = keccak256("PLATFORM_ROLE");
    /// @notice Basis-point denominator for `creatorShareBps`.
    uint16 public constant MAX_BPS = 10_000;

    enum Status {
        None,
        Open,
        Finalized,
        Cancelled
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
        bytes32 roundsDigest;
        bytes32 finalModelHash;
    }

    uint256 private _taskCount;
    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 taskId => mapping(uint32 round => bytes32 updatesRoot)) private _roots;

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
        uint32 acceptedCount,
        bytes32 roundsDigest
    );
    event TaskFinalized(
        uint256 indexed taskId,
        bytes32 finalModelHash,
        address indexed rewardReceiver,
        uint256 reward
    );
    event TaskCancelled(uint256 indexed taskId, address indexed creator, uint256 refund);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and PLATFORM_ROLE.
    constructor(address admin) {
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
     * @dev One transaction per round whatever the participant count. `roundsDigest` becomes
     * keccak256(previousDigest, round, globalModelHash, updatesRoot, acceptedCount).
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

        bytes32 digest = keccak256(
            abi.encode(t.roundsDigest, round, globalModelHash, updatesRoot, acceptedCount)
        );
        t.lastRound = round;
        t.roundsDigest = digest;
        _roots[taskId][round] = updatesRoot;
        emit RoundCommitted(taskId, round, globalModelHash, updatesRoot, acceptedCount, digest);
    }

    /**
     * @notice Finalize a task whose rounds are all committed and release the reward pool.
     * @dev Direct transfer to `rewardReceiver` (normally the StakeToken pool, which books it as unallocated
     * revenue) after all state is settled; `nonReentrant`. A reverting receiver reverts the whole call.
     * @param taskId The task.
     * @param finalModelHash Hash of the final model.
     * @param rewardReceiver Recipient of the escrowed reward pool.
     */
    function finalize(
        uint256 taskId,
        bytes32 finalModelHash,
        address payable rewardReceiver
    ) external onlyRole(PLATFORM_ROLE) nonReentrant {
        if (rewardReceiver == address(0)) revert TaskRegistryZeroAddress();
        Task storage t = _openTask(taskId);
        if (t.lastRound != t.rounds) revert TaskRegistryRoundsIncomplete(taskId, t.lastRound, t.rounds);

        uint256 reward = t.reward;
        t.reward = 0;
        t.status = Status.Finalized;
        t.finalModelHash = finalModelHash;
        emit TaskFinalized(taskId, finalModelHash, rewardReceiver, reward);

        Address.sendValue(rewardReceiver, reward);
    }

    /**
     * @notice Cancel an open task before its first round is committed and refund the creator.
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

    /// @notice The updates root committed for `round` of `taskId` (zero if not committed).
    function roundRoot(uint256 taskId, uint32 round) external view returns (bytes32) {
        return _roots[taskId][round];
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

    /// @notice Prove that an update is included in the committed root of `round` of `taskId`.
    function verifyUpdate(
        uint256 taskId,
        uint32 round,
        address participant,
        bytes32 updateHash,
        uint256 score,
        bool accepted,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _roots[taskId][round];
        if (root == bytes32(0)) return false;
        return MerkleProof.verifyCalldata(proof, root, updateLeaf(participant, updateHash, score, accepted));
    }

    function _openTask(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status != Status.Open) {
            if (t.status == Status.None) revert TaskRegistryUnknownTask(taskId);
            revert TaskRegistryNotOpen(taskId, t.status);
        }
    }
}
