// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";

/**
 * @title ModelNFT
 * @notice One ERC-721 token per trained model, token id = task id (= StakeToken id), with ERC-2981 royalties paid
 * to the stake pool (StakeToken).
 * @dev tokenURI = baseURI + tokenId, pointing to the platform's metadata endpoint (OpenSea metadata standard);
 * {contractURI} is the collection's metadata (ERC-7572).
 */
contract ModelNFT is ERC721, ERC2981, AccessControl {
    /// @notice Role allowed to mint.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    struct Model {
        bytes32 modelHash;
        uint256 taskId;
    }

    uint256 private _totalMinted;
    string private _baseTokenURI;
    string private _contractURI;
    mapping(uint256 tokenId => bytes32 modelHash) private _modelHashes;
    mapping(bytes32 modelHash => uint256 tokenId) private _tokenOfModel;

    error ModelNFTZeroModelHash();
    error ModelNFTZeroTaskId();
    error ModelNFTAlreadyMinted(uint256 taskId, bytes32 modelHash);

    event ModelMinted(
        uint256 indexed tokenId,
        address indexed to,
        bytes32 indexed modelHash,
        uint256 taskId,
        address royaltyReceiver,
        uint96 royaltyBps
    );
    event BaseURIUpdated(string baseURI);
    /// @notice ERC-7572: the collection metadata changed.
    event ContractURIUpdated();

    /// @param admin Receives DEFAULT_ADMIN_ROLE and MINTER_ROLE.
    /// @param baseURI_ Initial base URI (e.g. "https://bcfl.example/api/nft/").
    /// @param contractURI_ Collection metadata URI (ERC-7572, e.g. "https://bcfl.example/api/nft/contract.json").
    constructor(
        address admin,
        string memory baseURI_,
        string memory contractURI_
    ) ERC721("BCFL Model", "BCFLM") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
        _baseTokenURI = baseURI_;
        _contractURI = contractURI_;
        emit BaseURIUpdated(baseURI_);
        emit ContractURIUpdated();
    }

    /**
     * @notice Mint the NFT of the model trained by task `taskId`; its token id is `taskId`.
     * @param to Initial owner.
     * @param taskId Task that produced the model (> 0; one token per task).
     * @param modelHash Hash of the final model (non-zero; one token per model).
     * @param royaltyReceiver ERC-2981 royalty receiver (the StakeToken pool).
     * @param royaltyBps Royalty in basis points (<= 10000).
     * @return tokenId The new token id (= taskId).
     */
    function mint(
        address to,
        uint256 taskId,
        bytes32 modelHash,
        address royaltyReceiver,
        uint96 royaltyBps
    ) external onlyRole(MINTER_ROLE) returns (uint256 tokenId) {
        if (modelHash == bytes32(0)) revert ModelNFTZeroModelHash();
        if (taskId == 0) revert ModelNFTZeroTaskId();
        if (_modelHashes[taskId] != bytes32(0) || _tokenOfModel[modelHash] != 0) {
            revert ModelNFTAlreadyMinted(taskId, modelHash);
        }
        tokenId = taskId;
        ++_totalMinted;
        _modelHashes[tokenId] = modelHash;
        _tokenOfModel[modelHash] = tokenId;
        _setTokenRoyalty(tokenId, royaltyReceiver, royaltyBps);
        emit ModelMinted(tokenId, to, modelHash, taskId, royaltyReceiver, royaltyBps);
        _safeMint(to, tokenId);
    }

    /// @notice Set the collection metadata URI (ERC-7572).
    function setContractURI(string calldata contractURI_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _contractURI = contractURI_;
        emit ContractURIUpdated();
    }

    /// @notice Collection metadata URI (ERC-7572).
    function contractURI() external view returns (string memory) {
        return _contractURI;
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
        return Model({modelHash: _modelHashes[tokenId], taskId: tokenId});
    }

    /// @notice Token id minted for `modelHash` (0 if none).
    function tokenOfModel(bytes32 modelHash) external view returns (uint256) {
        return _tokenOfModel[modelHash];
    }

    /// @notice Number of tokens minted so far.
    function totalMinted() external view returns (uint256) {
        return _totalMinted;
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
