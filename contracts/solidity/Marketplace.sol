// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {StakeToken} from "./StakeToken.sol";

/**
 * @title Marketplace
 * @notice Fixed-price sales of ModelNFTs and licences. NFT sale: the ERC-2981 royalty goes to the stake pool
 * (StakeToken.depositRevenue(tokenId)), the rest is credited to the seller. Licence sale: the NFT owner sets the
 * terms (price in wei, duration in seconds with 0 = perpetual, keccak256 of the terms text); a buyer names the
 * price and terms hash it saw, so a change between page load and purchase reverts instead of charging for
 * other terms; all proceeds go to the stake pool. Sellers withdraw their credits (pull payments).
 * @dev Every payable/ETH-moving entry point is `nonReentrant` and checks-effects-interactions. No privileged
 * roles: listings and licence prices are controlled by the NFT owner only.
 */
contract Marketplace is ReentrancyGuardTransient {
    struct Listing {
        address seller;
        uint96 price;
    }

    struct LicenceTerms {
        address setBy; // owner who set the terms; they lapse when the NFT changes hands
        uint96 price; // wei; 0 = not for sale
        uint64 duration; // seconds; 0 = perpetual
        bytes32 termsHash; // keccak256 of the terms text
    }

    struct Licence {
        uint256 tokenId;
        address buyer;
        uint96 price;
        uint64 expiresAt; // unix seconds; 0 = perpetual
    }

    /// @notice The ModelNFT contract (ERC-721 + ERC-2981).
    IERC721 public immutable nft;
    /// @notice The stake pool receiving royalties and licence proceeds.
    StakeToken public immutable stakeToken;

    uint256 private _licenceCount;
    mapping(uint256 tokenId => Listing) private _listings;
    mapping(uint256 tokenId => LicenceTerms) private _licenceTerms;
    mapping(uint256 licenceId => Licence) private _licences;
    mapping(address account => uint256) private _credits;

    error MarketplaceNotTokenOwner(uint256 tokenId, address caller);
    error MarketplaceNotApproved(uint256 tokenId);
    error MarketplaceZeroPrice();
    error MarketplacePriceTooLarge(uint256 price);
    error MarketplaceZeroTermsHash();
    error MarketplaceNotListed(uint256 tokenId);
    error MarketplaceNotSeller(uint256 tokenId, address caller);
    error MarketplaceListingStale(uint256 tokenId);
    error MarketplaceOwnModel(uint256 tokenId, address buyer);
    error MarketplaceWrongPayment(uint256 expected, uint256 sent);
    error MarketplaceLicenceNotForSale(uint256 tokenId);
    error MarketplaceLicenceTermsChanged(
        uint256 tokenId,
        uint256 expectedPrice,
        uint256 price,
        bytes32 expectedTermsHash,
        bytes32 termsHash
    );
    error MarketplaceNothingToWithdraw(address account);

    event NFTListed(uint256 indexed tokenId, address indexed seller, uint256 price);
    event NFTListingCancelled(uint256 indexed tokenId, address indexed seller);
    event NFTSold(
        uint256 indexed tokenId,
        address indexed seller,
        address indexed buyer,
        uint256 price,
        uint256 royalty
    );
    event LicenceTermsSet(
        uint256 indexed tokenId,
        address indexed owner,
        uint256 price,
        uint64 duration,
        bytes32 termsHash
    );
    event LicencePurchased(
        uint256 indexed tokenId,
        address indexed buyer,
        uint256 price,
        uint256 licenceId,
        uint64 expiresAt,
        bytes32 termsHash
    );
    event Credited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    /// @param nft_ ModelNFT address.
    /// @param stakeToken_ StakeToken address.
    constructor(IERC721 nft_, StakeToken stakeToken_) {
        nft = nft_;
        stakeToken = stakeToken_;
    }

    /**
     * @notice List `tokenId` for `price` wei; the caller must own it and have approved this marketplace.
     * Listing again updates the price.
     */
    function listNFT(uint256 tokenId, uint256 price) external {
        if (price == 0) revert MarketplaceZeroPrice();
        if (price > type(uint96).max) revert MarketplacePriceTooLarge(price);
        address owner = nft.ownerOf(tokenId);
        if (owner != msg.sender) revert MarketplaceNotTokenOwner(tokenId, msg.sender);
        if (nft.getApproved(tokenId) != address(this) && !nft.isApprovedForAll(owner, address(this))) {
            revert MarketplaceNotApproved(tokenId);
        }
        _listings[tokenId] = Listing({seller: msg.sender, price: uint96(price)});
        emit NFTListed(tokenId, msg.sender, price);
    }

    /// @notice Withdraw the caller's listing of `tokenId`.
    function cancelNFTListing(uint256 tokenId) external {
        Listing memory l = _listings[tokenId];
        if (l.seller == address(0)) revert MarketplaceNotListed(tokenId);
        if (l.seller != msg.sender) revert MarketplaceNotSeller(tokenId, msg.sender);
        delete _listings[tokenId];
        emit NFTListingCancelled(tokenId, msg.sender);
    }

    /**
     * @notice Buy listed `tokenId` paying exactly its price (a changed price reverts with
     * MarketplaceWrongPayment(expected, sent)). The royalty goes to the stake pool, the rest is credited to the
     * seller for {withdraw}, and the NFT is transferred to the caller. Of two racing buyers the first mined wins;
     * the listing is then gone and the other reverts with MarketplaceNotListed.
     */
    function buyNFT(uint256 tokenId) external payable nonReentrant {
        Listing memory l = _listings[tokenId];
        if (l.seller == address(0)) revert MarketplaceNotListed(tokenId);
        if (l.seller == msg.sender) revert MarketplaceOwnModel(tokenId, msg.sender);
        if (msg.value != l.price) revert MarketplaceWrongPayment(l.price, msg.value);
        if (nft.ownerOf(tokenId) != l.seller) revert MarketplaceListingStale(tokenId);

        (address receiver, uint256 royalty) = IERC2981(address(nft)).royaltyInfo(tokenId, msg.value);
        if (royalty > msg.value) royalty = msg.value;
        delete _listings[tokenId];
        _credit(l.seller, msg.value - royalty);
        bool toPool = royalty != 0 && receiver == address(stakeToken);
        if (royalty != 0 && !toPool) _credit(receiver, royalty);
        emit NFTSold(tokenId, l.seller, msg.sender, msg.value, royalty);

        if (toPool) stakeToken.depositRevenue{value: royalty}(tokenId);
        nft.safeTransferFrom(l.seller, msg.sender, tokenId);
    }

    /**
     * @notice Set the licence terms of `tokenId` (only its current owner): `price` wei (0 withdraws the offer),
     * `duration` seconds from purchase (0 = perpetual), `termsHash` = keccak256 of the terms text (non-zero when
     * for sale). The terms lapse when the NFT changes hands.
     */
    function setLicenceTerms(uint256 tokenId, uint256 price, uint64 duration, bytes32 termsHash) external {
        if (price > type(uint96).max) revert MarketplacePriceTooLarge(price);
        if (price != 0 && termsHash == bytes32(0)) revert MarketplaceZeroTermsHash();
        if (nft.ownerOf(tokenId) != msg.sender) revert MarketplaceNotTokenOwner(tokenId, msg.sender);
        _licenceTerms[tokenId] = LicenceTerms({
            setBy: msg.sender,
            price: uint96(price),
            duration: duration,
            termsHash: termsHash
        });
        emit LicenceTermsSet(tokenId, msg.sender, price, duration, termsHash);
    }

    /**
     * @notice Buy a licence of `tokenId` under the terms the buyer saw: `expectedPrice` wei (= msg.value) and
     * `expectedTermsHash`; all proceeds go to the stake pool. The licence expires `duration` seconds after this
     * block (0 = never).
     * @return licenceId The new licence id (starts at 1).
     */
    function buyLicence(
        uint256 tokenId,
        uint256 expectedPrice,
        bytes32 expectedTermsHash
    ) external payable nonReentrant returns (uint256 licenceId) {
        LicenceTerms memory t = _licenceTerms[tokenId];
        address owner = nft.ownerOf(tokenId);
        if (t.price == 0 || owner != t.setBy) revert MarketplaceLicenceNotForSale(tokenId);
        if (owner == msg.sender) revert MarketplaceOwnModel(tokenId, msg.sender);
        if (t.price != expectedPrice || t.termsHash != expectedTermsHash) {
            revert MarketplaceLicenceTermsChanged(tokenId, expectedPrice, t.price, expectedTermsHash, t.termsHash);
        }
        if (msg.value != t.price) revert MarketplaceWrongPayment(t.price, msg.value);

        // block.timestamp + a uint64 duration fits in uint64 for the next ~584 billion years
        uint64 expiresAt = t.duration == 0 ? 0 : uint64(block.timestamp) + t.duration;
        licenceId = ++_licenceCount;
        _licences[licenceId] = Licence({tokenId: tokenId, buyer: msg.sender, price: t.price, expiresAt: expiresAt});
        emit LicencePurchased(tokenId, msg.sender, msg.value, licenceId, expiresAt, t.termsHash);

        stakeToken.depositRevenue{value: msg.value}(tokenId);
    }

    /// @notice Withdraw the caller's credited sale proceeds.
    function withdraw() external nonReentrant {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert MarketplaceNothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    /// @notice Current listing of `tokenId` (seller zero if not listed).
    function listingOf(uint256 tokenId) external view returns (Listing memory) {
        return _listings[tokenId];
    }

    /// @notice Licence terms of `tokenId` in force (price 0 if not for sale, including after a change of owner).
    function licenceTermsOf(uint256 tokenId) external view returns (LicenceTerms memory t) {
        t = _licenceTerms[tokenId];
        if (t.price == 0 || nft.ownerOf(tokenId) != t.setBy) return LicenceTerms(address(0), 0, 0, bytes32(0));
    }

    /// @notice Licence record `licenceId` (tokenId 0 if none).
    function licenceOf(uint256 licenceId) external view returns (Licence memory) {
        return _licences[licenceId];
    }

    /// @notice Number of licences sold so far (= the latest licence id).
    function licenceCount() external view returns (uint256) {
        return _licenceCount;
    }

    /// @notice Wei `account` can {withdraw}.
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    function _credit(address account, uint256 amount) private {
        if (amount == 0) return;
        _credits[account] += amount;
        emit Credited(account, amount);
    }
}
