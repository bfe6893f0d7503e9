// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1155Receiver} from "@openzeppelin/contracts/token/ERC1155/IERC1155Receiver.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {StakeToken} from "../StakeToken.sol";

/**
 * @title StakeClaimAttacker (test only)
 * @notice Holds shares and re-enters StakeToken.claim from receive(). With `swallow` the failed re-entry is caught
 * (to show the attacker gains nothing); otherwise the re-entry's revert bubbles up.
 */
contract StakeClaimAttacker is IERC1155Receiver {
    StakeToken public immutable stake;
    bool public swallow;
    uint256 public attackId;
    uint256 public reentries;
    bool public reentryFailed;

    constructor(StakeToken stake_) {
        stake = stake_;
    }

    bool public armed;

    /// @notice Arm the receive() hook: the next ETH from the stake pool triggers one re-entrant claim(id).
    function arm(uint256 id, bool swallow_) external {
        attackId = id;
        swallow = swallow_;
        armed = true;
    }

    function attack(uint256 id, bool swallow_) external {
        this.arm(id, swallow_);
        stake.claim(id);
    }

    receive() external payable {
        if (msg.sender != address(stake) || !armed) return;
        armed = false;
        reentries++;
        if (swallow) {
            try stake.claim(attackId) {} catch {
                reentryFailed = true;
            }
        } else {
            stake.claim(attackId);
        }
    }

    function onERC1155Received(address, address, uint256, uint256, bytes calldata) external pure returns (bytes4) {
        return IERC1155Receiver.onERC1155Received.selector;
    }

    function onERC1155BatchReceived(
        address,
        address,
        uint256[] calldata,
        uint256[] calldata,
        bytes calldata
    ) external pure returns (bytes4) {
        return IERC1155Receiver.onERC1155BatchReceived.selector;
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC1155Receiver).interfaceId || interfaceId == type(IERC165).interfaceId;
    }
}
