// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title GasBurner (test only)
 * @notice A stake holder whose receive() burns all the gas it is given (a griefing holder): pushed payouts to it
 * must fail without blocking the others.
 */
contract GasBurner {
    uint256 public sink;

    receive() external payable {
        while (true) {
            sink += 1;
        }
    }
}
