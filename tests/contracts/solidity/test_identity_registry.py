from __future__ import annotations

from eth_utils import keccak

from tests.contracts.solidity.helpers import reverts, role

DID = keccak(text="did:pkh:eip155:31337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
OTHER = keccak(text="nullifier:42")
EVIDENCE = keccak(text="evidence")


def now(env) -> int:
    return env.w3.eth.get_block("latest")["timestamp"]


def advance(env, seconds: int) -> None:
    env.w3.provider.make_request("evm_increaseTime", [seconds])
    env.w3.provider.make_request("evm_mine", [])


def test_permanent_ban_and_lift(env):
    reg = env.identity.functions
    assert reg.isBanned(DID).call() is False
    receipt = env.send(reg.ban(DID, 7, EVIDENCE, 0))
    (ev,) = env.event(env.identity, "IdentityBanned", receipt)
    assert dict(ev["args"]) == {
        "identity": DID,
        "taskId": 7,
        "evidenceHash": EVIDENCE,
        "expiresAt": 0,
        "by": env.platform,
    }
    assert reg.isBanned(DID).call() is True
    assert reg.isBanned(OTHER).call() is False
    banned_at, expires_at, active, task_id, evidence = reg.banOf(DID).call()
    assert (expires_at, active, task_id, evidence) == (0, True, 7, EVIDENCE) and banned_at > 0
    advance(env, 10 * 365 * 86400)
    assert reg.isBanned(DID).call() is True

    reason = keccak(text="appeal granted")
    receipt = env.send(reg.lift(DID, reason))
    (ev,) = env.event(env.identity, "BanLifted", receipt)
    assert dict(ev["args"]) == {"identity": DID, "reasonHash": reason, "by": env.platform}
    assert reg.isBanned(DID).call() is False
    assert reg.banOf(DID).call()[2] is False
    with reverts("IdentityRegistryNotBanned", DID):
        reg.lift(DID, reason).transact({"from": env.platform})


def test_ban_expires(env):
    reg = env.identity.functions
    expires = now(env) + 3600
    env.send(reg.ban(DID, 1, EVIDENCE, expires))
    assert reg.isBanned(DID).call()
    advance(env, 3601)
    assert reg.isBanned(DID).call() is False
    with reverts("IdentityRegistryNotBanned", DID):
        reg.lift(DID, EVIDENCE).transact({"from": env.platform})
    # a new ban replaces an expired one
    env.send(reg.ban(DID, 2, EVIDENCE, 0))
    assert reg.isBanned(DID).call() and reg.banOf(DID).call()[3] == 2


def test_ban_rejects_past_expiry(env):
    ts = now(env)
    with reverts("IdentityRegistryInvalidExpiry"):
        env.identity.functions.ban(DID, 1, EVIDENCE, ts - 1).transact({"from": env.platform})


def test_only_banner_role(env, accounts):
    outsider = accounts[4]
    banner = role("BANNER_ROLE")
    with reverts("AccessControlUnauthorizedAccount", outsider, banner):
        env.identity.functions.ban(DID, 1, EVIDENCE, 0).transact({"from": outsider})
    env.send(env.identity.functions.ban(DID, 1, EVIDENCE, 0))
    with reverts("AccessControlUnauthorizedAccount", outsider, banner):
        env.identity.functions.lift(DID, EVIDENCE).transact({"from": outsider})
    env.send(env.identity.functions.grantRole(banner, outsider))
    env.send(env.identity.functions.lift(DID, EVIDENCE), outsider)
    assert not env.identity.functions.isBanned(DID).call()
