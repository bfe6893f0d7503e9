// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";

/**
 * @title ModelNFT
 * @notice One ERC-721 token per trained model, with ERC-2981 royalties paid to the stake pool (StakeToken).
 * @dev tokenURI = baseURI + tokenId, pointing to the platform's metadata endpoint (OpenSea metadata standard).
 */
contract ModelNFT is ERC721, ERC2981, AccessControl {
    /// @notice Role allowed to mint.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    struct Model {
        bytes32 modelHash;
        uint256 taskId;
    }

    uint256 private _lastTokenId;
    string private _baseTokenURI;
    mapping(uint256 tokenId => Model) private _models;
    mapping(bytes32 modelHash => uint256 tokenId) private _tokenOfModel;

    error ModelNFTZeroModelHash();
    error ModelNFTAlreadyMinted(bytes32 modelHash, uint256 tokenId);

    event ModelMinted(
        uint256 indexed tokenId,
        address indexed to,
        bytes32 indexed modelHash,
        uint256 taskId,
        address royaltyReceiver,
        uint96 royaltyBps
    );
    event BaseURIUpdated(string baseURI);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and MINTER_ROLE.
    /// @param baseURI_ Initial base URI (e.g. "https://bcfl.example/api/nft/").
    constructor(address admin, string memory baseURI_) ERC721("BCFL Model", "BCFLM") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
        _baseTokenURI = baseURI_;
        emit BaseURIUpdated(baseURI_);
    }

    /**
     * @notice Mint the NFT of a trained model.
     * @param to Initial owner.
     * @param modelHash Hash of the final model (unique: one token per model).
     * @param taskId Task that produced the model.
     * @param royaltyReceiver ERC-2981 royalty receiver (the StakeToken pool).
     * @param royaltyBps Royalty in basis points (<= 10000).
     * @return tokenId The new token id (starts at 1).
     */
    function mint(
        address to,
        bytes32 modelHash,
        uint256 taskId,
        address royaltyReceiver,
        uint96 royaltyBps
    ) external onlyRole(MINTER_ROLE) returns (uint256 tokenId) {
        if (modelHash == bytes32(0)) revert ModelNFTZeroModelHash();
        uint256 existing = _tokenOfModel[modelHash];
        if (existing != 0) revert ModelNFTAlreadyMinted(modelHash, existing);

        tokenId = ++_lastTokenId;
        _models[tokenId] = Model({modelHash: modelHash, taskId: taskId});
        _tokenOfModel[modelHash] = tokenId;
        _setTokenRoyalty(tokenId, royaltyReceiver, royaltyBps);
        emit ModelMinted(tokenId, to, modelHash, taskId, royaltyReceiver, royaltyBps);
        _safeMint(to, tokenId);
    }

    /// @notice Set the base of every token URI.
    function setBaseURI(string calldata baseURI_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _baseTokenURI = baseURI_;
        emit BaseURIUpdated(baseURI_);
    }

    /// @notice Current base URI.
    function baseURI() external view returns (string memory) {
        return _baseTokenURI;
    }

    /// @notice Model hash and task id of `tokenId` (reverts if it does not exist).
    function modelOf(uint256 tokenId) external view returns (Model memory) {
        _requireOwned(tokenId);
        return _models[tokenId];
    }

    /// @notice Token id minted for `modelHash` (0 if none).
    function tokenOfModel(bytes32 modelHash) external view returns (uint256) {
        return _tokenOfModel[modelHash];
    }

    /// @notice Number of tokens minted so far (= the latest token id).
    function totalMinted() external view returns (uint256) {
        return _lastTokenId;
    }

    /// @inheritdoc ERC721
    function supportsInterface(
        bytes4 interfaceId
    ) public view override(ERC721, ERC2981, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    function _baseURI() internal view override returns (string memory) {
        return _baseTokenURI;
    }
}
