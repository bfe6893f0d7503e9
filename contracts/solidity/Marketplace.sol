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
 * (StakeToken.depositRevenue(tokenId)), the rest is credited to the seller. Licence sale: all proceeds go to the
 * stake pool. Sellers withdraw their credits (pull payments).
 * @dev Every payable/ETH-moving entry point is `nonReentrant` and checks-effects-interactions. No privileged
 * roles: listings and licence prices are controlled by the NFT owner only.
 */
contract Marketplace is ReentrancyGuardTransient {
    struct Listing {
        address seller;
        uint96 price;
    }

    struct LicencePrice {
        address setBy; // owner who set the price; the price lapses when the NFT changes hands
        uint96 price;
    }

    struct Licence {
        uint256 tokenId;
        address buyer;
        uint96 price;
    }

    /// @notice The ModelNFT contract (ERC-721 + ERC-2981).
    IERC721 public immutable nft;
    /// @notice The stake pool receiving royalties and licence proceeds.
    StakeToken public immutable stakeToken;

    uint256 private _licenceCount;
    mapping(uint256 tokenId => Listing) private _listings;
    mapping(uint256 tokenId => LicencePrice) private _licencePrices;
    mapping(uint256 licenceId => Licence) private _licences;
    mapping(address account => uint256) private _credits;

    error MarketplaceNotTokenOwner(uint256 tokenId, address caller);
    error MarketplaceNotApproved(uint256 tokenId);
    error MarketplaceZeroPrice();
    error MarketplacePriceTooLarge(uint256 price);
    error MarketplaceNotListed(uint256 tokenId);
    error MarketplaceNotSeller(uint256 tokenId, address caller);
    error MarketplaceListingStale(uint256 tokenId);
    error MarketplaceWrongPayment(uint256 expected, uint256 sent);
    error MarketplaceLicenceNotForSale(uint256 tokenId);
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
    event LicencePriceSet(uint256 indexed tokenId, address indexed owner, uint256 price);
    event LicencePurchased(uint256 indexed tokenId, address indexed buyer, uint256 price, uint256 licenceId);
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
     * @notice Buy listed `tokenId` paying exactly its price. The royalty goes to the stake pool, the rest is
     * credited to the seller for {withdraw}, and the NFT is transferred to the caller.
     */
    function buyNFT(uint256 tokenId) external payable nonReentrant {
        Listing memory l = _listings[tokenId];
        if (l.seller == address(0)) revert MarketplaceNotListed(tokenId);
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

    /// @notice Set (or with 0, withdraw) the licence price of `tokenId`; only its current owner.
    function setLicencePrice(uint256 tokenId, uint256 price) external {
        if (price > type(uint96).max) revert MarketplacePriceTooLarge(price);
        if (nft.ownerOf(tokenId) != msg.sender) revert MarketplaceNotTokenOwner(tokenId, msg.sender);
        _licencePrices[tokenId] = LicencePrice({setBy: msg.sender, price: uint96(price)});
        emit LicencePriceSet(tokenId, msg.sender, price);
    }

    /**
     * @notice Buy a licence of `tokenId` paying exactly its price; all proceeds go to the stake pool.
     * @return licenceId The new licence id (starts at 1).
     */
    function buyLicence(uint256 tokenId) external payable nonReentrant returns (uint256 licenceId) {
        LicencePrice memory p = _licencePrices[tokenId];
        if (p.price == 0 || nft.ownerOf(tokenId) != p.setBy) revert MarketplaceLicenceNotForSale(tokenId);
        if (msg.value != p.price) revert MarketplaceWrongPayment(p.price, msg.value);

        licenceId = ++_licenceCount;
        _licences[licenceId] = Licence({tokenId: tokenId, buyer: msg.sender, price: p.price});
        emit LicencePurchased(tokenId, msg.sender, msg.value, licenceId);

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

    /// @notice Licence price of `tokenId` (0 if not for sale, including after the NFT changed hands).
    function licencePriceOf(uint256 tokenId) external view returns (uint256) {
        LicencePrice memory p = _licencePrices[tokenId];
        if (p.price == 0 || nft.ownerOf(tokenId) != p.setBy) return 0;
        return p.price;
    }

    /// @notice Licence record `licenceId`.
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
