// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StakeToken} from "../StakeToken.sol";

/**
 * @title StakeLens (test only)
 * @notice Reads a StakeToken's per-account accounting for many accounts in one eth_call (the property test checks
 * every account after every sequence).
 */
contract StakeLens {
    struct AccountView {
        uint256 balance;
        uint256 accumulated;
        uint256 withdrawn;
        uint256 claimable;
        bool sharesClaimed;
    }

    function accounts(
        StakeToken stake,
        uint256 id,
        address[] calldata holders
    ) external view returns (AccountView[] memory out, uint256 deposited, uint256 unallocated) {
        out = new AccountView[](holders.length);
        for (uint256 i; i < holders.length; ++i) {
            address h = holders[i];
            out[i] = AccountView({
                balance: stake.balanceOf(h, id),
                accumulated: stake.accumulated(id, h),
                withdrawn: stake.withdrawn(id, h),
                claimable: stake.claimable(id, h),
                sharesClaimed: stake.sharesClaimed(id, h)
            });
        }
        deposited = stake.totalDeposited(id);
        unallocated = stake.unallocatedRevenue();
    }
}
