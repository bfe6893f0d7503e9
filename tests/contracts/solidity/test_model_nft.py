from __future__ import annotations

from eth_utils import keccak

from tests.contracts.solidity.helpers import NFT_BASE_URI, reverts, role

M1, M2 = keccak(text="model-1"), keccak(text="model-2")


def test_mint_sets_owner_metadata_and_royalty(env, accounts):
    owner = accounts[1]
    receipt = env.send(env.nft.functions.mint(owner, M1, 5, env.stake.address, 750))
    (ev,) = env.event(env.nft, "ModelMinted", receipt)
    assert dict(ev["args"]) == {
        "tokenId": 1,
        "to": owner,
        "modelHash": M1,
        "taskId": 5,
        "royaltyReceiver": env.stake.address,
        "royaltyBps": 750,
    }
    nft = env.nft.functions
    assert nft.ownerOf(1).call() == owner
    assert nft.tokenURI(1).call() == NFT_BASE_URI + "1"
    assert nft.modelOf(1).call() == (M1, 5)
    assert nft.tokenOfModel(M1).call() == 1 and nft.tokenOfModel(M2).call() == 0
    assert nft.royaltyInfo(1, 10_000).call() == [env.stake.address, 750]
    assert nft.totalMinted().call() == 1
    assert env.mint_model(owner, M2) == 2


def test_mint_rejects_bad_input(env, accounts):
    nft = env.nft.functions
    env.mint_model(accounts[1], M1)
    with reverts("ModelNFTAlreadyMinted", M1, 1):
        nft.mint(accounts[1], M1, 1, env.stake.address, 500).transact({"from": env.platform})
    with reverts("ModelNFTZeroModelHash"):
        nft.mint(accounts[1], b"\x00" * 32, 1, env.stake.address, 500).transact({"from": env.platform})
    with reverts("ERC2981InvalidTokenRoyalty", 2, 10_001, 10_000):
        nft.mint(accounts[1], M2, 1, env.stake.address, 10_001).transact({"from": env.platform})
    with reverts("ERC721InvalidReceiver"):  # a contract without onERC721Received
        nft.mint(env.task.address, M2, 1, env.stake.address, 500).transact({"from": env.platform})
    with reverts("ERC721NonexistentToken", 9):
        nft.tokenURI(9).call()


def test_only_minter_mints(env, accounts):
    with reverts("AccessControlUnauthorizedAccount", accounts[2], role("MINTER_ROLE")):
        env.nft.functions.mint(accounts[2], M1, 1, env.stake.address, 500).transact({"from": accounts[2]})


def test_base_uri_admin_only(env, accounts):
    env.mint_model(accounts[1], M1)
    receipt = env.send(env.nft.functions.setBaseURI("https://new.example/m/"))
    assert env.event(env.nft, "BaseURIUpdated", receipt)[0]["args"]["baseURI"] == "https://new.example/m/"
    assert env.nft.functions.tokenURI(1).call() == "https://new.example/m/1"
    assert env.nft.functions.baseURI().call() == "https://new.example/m/"
    with reverts("AccessControlUnauthorizedAccount", accounts[1], role("DEFAULT_ADMIN_ROLE")):
        env.nft.functions.setBaseURI("x").transact({"from": accounts[1]})


def test_supports_interface(env):
    supports = env.nft.functions.supportsInterface
    for iface in ("0x01ffc9a7", "0x80ac58cd", "0x5b5e139f", "0x2a55205a", "0x7965db0b"):
        assert supports(bytes.fromhex(iface[2:])).call(), iface
    assert not supports(bytes.fromhex("ffffffff")).call()
    assert not supports(bytes.fromhex("d9b67a26")).call()  # not ERC-1155
