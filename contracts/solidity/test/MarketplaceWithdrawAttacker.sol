// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {Marketplace} from "../Marketplace.sol";

/**
 * @title MarketplaceWithdrawAttacker (test only)
 * @notice Sells an NFT, then re-enters Marketplace.withdraw from receive(). With `swallow` the failed re-entry is
 * caught (to show the attacker gains nothing); otherwise the re-entry's revert bubbles up.
 */
contract MarketplaceWithdrawAttacker is IERC721Receiver {
    Marketplace public immutable market;
    bool public swallow;
    uint256 public reentries;
    bool public reentryFailed;

    constructor(Marketplace market_) {
        market = market_;
    }

    function list(uint256 tokenId, uint256 price) external {
        IERC721 nft = market.nft();
        nft.approve(address(market), tokenId);
        market.listNFT(tokenId, price);
    }

    function attack(bool swallow_) external {
        swallow = swallow_;
        market.withdraw();
    }

    receive() external payable {
        if (reentries > 0) return;
        reentries++;
        if (swallow) {
            try market.withdraw() {} catch {
                reentryFailed = true;
            }
        } else {
            market.withdraw();
        }
    }

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return IERC721Receiver.onERC721Received.selector;
    }
}
