// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC1155Receiver} from "@openzeppelin/contracts/token/ERC1155/IERC1155Receiver.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {StakeToken} from "../StakeToken.sol";

/**
 * @title RevertingReceiver (test only)
 * @notice Accepts ERC-1155 shares but its receive() always reverts (a holder that blocks pushed payouts), unless
 * `accept` is switched on, after which it can claim normally.
 */
contract RevertingReceiver is IERC1155Receiver {
    error RevertingReceiverRejected();

    bool public accept;

    function setAccept(bool accept_) external {
        accept = accept_;
    }

    function claim(StakeToken stake, uint256 id) external returns (uint256) {
        return stake.claim(id);
    }

    receive() external payable {
        if (!accept) revert RevertingReceiverRejected();
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
