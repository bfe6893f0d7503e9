from __future__ import annotations

from eth_utils import keccak

from tests.contracts.solidity.helpers import NFT_BASE_URI, NFT_CONTRACT_URI, reverts, role

M1, M2 = keccak(text="model-1"), keccak(text="model-2")


def test_mint_sets_owner_metadata_and_royalty(env, accounts):
    owner = accounts[1]
    receipt = env.send(env.nft.functions.mint(owner, 5, M1, env.stake.address, 750))
    (ev,) = env.event(env.nft, "ModelMinted", receipt)
    assert dict(ev["args"]) == {
        "tokenId": 5,
        "to": owner,
        "modelHash": M1,
        "taskId": 5,
        "royaltyReceiver": env.stake.address,
        "royaltyBps": 750,
    }
    nft = env.nft.functions
    assert nft.ownerOf(5).call() == owner
    assert nft.tokenURI(5).call() == NFT_BASE_URI + "5"
    assert nft.modelOf(5).call() == (M1, 5)
    assert nft.tokenOfModel(M1).call() == 5 and nft.tokenOfModel(M2).call() == 0
    assert nft.royaltyInfo(5, 10_000).call() == [env.stake.address, 750]
    assert nft.totalMinted().call() == 1
    assert env.mint_model(owner, M2, task_id=2) == 2
    assert nft.totalMinted().call() == 2


def test_mint_rejects_bad_input(env, accounts):
    nft = env.nft.functions
    env.mint_model(accounts[1], M1, task_id=1)
    tx = {"from": env.platform}
    with reverts("ModelNFTAlreadyMinted", 1, M2):  # the task's token exists
        nft.mint(accounts[1], 1, M2, env.stake.address, 500).transact(tx)
    with reverts("ModelNFTAlreadyMinted", 2, M1):  # the model hash was used
        nft.mint(accounts[1], 2, M1, env.stake.address, 500).transact(tx)
    with reverts("ModelNFTZeroModelHash"):
        nft.mint(accounts[1], 2, b"\x00" * 32, env.stake.address, 500).transact(tx)
    with reverts("ModelNFTZeroTaskId"):
        nft.mint(accounts[1], 0, M2, env.stake.address, 500).transact(tx)
    with reverts("ERC2981InvalidTokenRoyalty", 2, 10_001, 10_000):
        nft.mint(accounts[1], 2, M2, env.stake.address, 10_001).transact(tx)
    with reverts("ERC721InvalidReceiver"):  # a contract without onERC721Received
        nft.mint(env.task.address, 2, M2, env.stake.address, 500).transact(tx)
    with reverts("ERC721NonexistentToken", 9):
        nft.tokenURI(9).call()


def test_only_minter_mints(env, accounts):
    with reverts("AccessControlUnauthorizedAccount", accounts[2], role("MINTER_ROLE")):
        env.nft.functions.mint(accounts[2], 1, M1, env.stake.address, 500).transact({"from": accounts[2]})


def test_base_uri_admin_only(env, accounts):
    env.mint_model(accounts[1], M1)
    receipt = env.send(env.nft.functions.setBaseURI("https://new.example/m/"))
    assert env.event(env.nft, "BaseURIUpdated", receipt)[0]["args"]["baseURI"] == "https://new.example/m/"
    assert env.nft.functions.tokenURI(1).call() == "https://new.example/m/1"
    assert env.nft.functions.baseURI().call() == "https://new.example/m/"
    with reverts("AccessControlUnauthorizedAccount", accounts[1], role("DEFAULT_ADMIN_ROLE")):
        env.nft.functions.setBaseURI("x").transact({"from": accounts[1]})


def test_contract_uri_erc7572(env, accounts):
    nft = env.nft.functions
    assert nft.contractURI().call() == NFT_CONTRACT_URI
    receipt = env.send(nft.setContractURI("https://new.example/c.json"))
    assert len(env.event(env.nft, "ContractURIUpdated", receipt)) == 1
    assert nft.contractURI().call() == "https://new.example/c.json"
    with reverts("AccessControlUnauthorizedAccount", accounts[1], role("DEFAULT_ADMIN_ROLE")):
        nft.setContractURI("x").transact({"from": accounts[1]})


def test_supports_interface(env):
    supports = env.nft.functions.supportsInterface
    for iface in ("0x01ffc9a7", "0x80ac58cd", "0x5b5e139f", "0x2a55205a", "0x7965db0b"):
        assert supports(bytes.fromhex(iface[2:])).call(), iface
    assert not supports(bytes.fromhex("ffffffff")).call()
    assert not supports(bytes.fromhex("d9b67a26")).call()  # not ERC-1155
