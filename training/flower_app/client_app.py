"""BCFL ClientApp: trains the global model on this SuperNode's own data.

Node config (``flower-supernode --node-config``): ``data-path`` (the participant's own
.npz/.csv) or ``partition-id`` + ``num-partitions`` (+ optional ``dataset``) for a bundled
dataset. Hyper-parameters come from the run config (see ``task.DEFAULTS``).

Signed updates: when the run config has a non-zero ``chain-id`` (platform runs), every training reply
carries a ConfigRecord ``bcfl`` = {``wallet``, ``update-hash`` ("0x" + ``zoo.weights_hash`` of the
reply's arrays in ArrayRecord order), ``signature`` (EIP-712 ``Update(taskId, round, updateHash)``,
domain chainId = ``chain-id``, verifyingContract = ``registry-address``, taskId = ``chain-task-id``,
round = the message's ``server-round``)}. The wallet key is read from node config ``key-path``
(plain hex 0600 or keystore JSON with the password in ``$BCFL_KEY_PASSWORD`` or the variable
named by node config ``key-password-env``); it never leaves this machine.

Other node config: ``progress-path`` (append one JSON line per trained round, for the CLI's
progress bar); ``attack`` + ``attack-<option>`` (simulated malicious participants only, see
``training.attacks``).
"""

import json
import math
import time

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

if __package__:  # imported from the repository as training.flower_app.client_app
    from . import task
else:  # loaded by Flower from the unpacked app bundle, where task.py sits next to this file
    import task  # type: ignore[no-redef]

from training import attacks, zoo

app = ClientApp()


def _model_from(msg: Message, context: Context):
    spec = task.model_spec(context.run_config)
    model = spec.build()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict(), strict=True)
    return model


@app.train()
def train(msg: Message, context: Context) -> Message:
    rc, nc = context.run_config, context.node_config
    server_round = int(msg.content["config"].get("server-round", 0)) if "config" in msg.content else 0
    seed = task.cfg(rc, "seed") + 1000 * server_round + int(nc.get("partition-id", 0))
    task.seed_everything(seed)
    attack = attacks.from_node_config(nc)
    model = _model_from(msg, context)
    x, y, _, _ = task.client_data(nc, rc)
    n_examples = len(y)
    global_arrays = zoo.get_arrays(model) if attack is not None else None
    if attack is not None:
        rng = np.random.default_rng(seed)
        x, y = attack.poison_data(x, y, _num_classes(model, rc), rng)
    if attack is not None and attack.skips_training:
        loss, _ = task.evaluate(model, x, y)  # report a plausible loss without training
    else:
        loss = task.train(
            model,
            x,
            y,
            epochs=task.cfg(rc, "local-epochs"),
            batch_size=task.cfg(rc, "batch-size"),
            lr=task.cfg(rc, "lr"),
            momentum=task.cfg(rc, "momentum"),
            seed=seed,
        )
    if attack is not None:
        # Built from the poisoned arrays themselves (same keys), not loaded back into the model: the
        # invalid-update attacks (wrong_shape, oversized) change shapes a torch model would refuse.
        poisoned = attack.poison_update(zoo.get_arrays(model), global_arrays, rng)
        keys = zoo.state_keys(model)
        arrays = ArrayRecord({k: Array(np.ascontiguousarray(a)) for k, a in zip(keys, poisoned, strict=True)})
    else:
        arrays = ArrayRecord(model.state_dict())
    content = RecordDict(
        {
            "arrays": arrays,
            "metrics": MetricRecord(
                {
                    "train-loss": _finite(loss),
                    "num-examples": attack.claimed_examples(n_examples) if attack else n_examples,
                }
            ),
        }
    )
    # The app's defaults carry chain-id = 0: only platform runs (a real chain id) sign their updates.
    if int(rc.get("chain-id", 0) or 0):
        content["bcfl"] = sign_reply(arrays, rc, nc, server_round, attack=attack)
    _record_progress(nc, server_round, loss, n_examples)
    return Message(content=content, reply_to=msg)


def sign_reply(arrays: ArrayRecord, run_config, node_config, server_round: int, attack=None) -> ConfigRecord:
    """The ``bcfl`` ConfigRecord: wallet, update hash of ``arrays`` and its EIP-712 Update signature.

    ``attack``: SIMULATION ONLY — an attack whose ``signing_key()`` returns a key signs in place of the
    wallet (``bad_signature``), so the ServerApp's signature check can be exercised with real replies.
    """
    from training.client import wallet as wallet_mod

    key_path = str(node_config.get("key-path", "") or "")
    if not key_path:
        raise ValueError("this run needs signed updates but the node config has no key-path")
    password_env = str(node_config.get("key-password-env", "") or wallet_mod.PASSWORD_ENV)
    wallet = wallet_mod.load_wallet(key_path, password_env=password_env)
    forged_key = attack.signing_key() if attack is not None else None
    if forged_key:  # simulated malicious participant only
        from eth_account import Account

        wallet = wallet_mod.Wallet(Account.from_key(forged_key).address, forged_key)
    update_hash = "0x" + zoo.weights_hash(arrays.to_numpy_ndarrays())
    signature = wallet_mod.sign_update(
        wallet,
        chain_id=int(run_config["chain-id"]),
        registry=str(run_config["registry-address"]),
        task_id=int(run_config["chain-task-id"]),
        round=server_round,
        update_hash=update_hash,
    )
    return ConfigRecord({"wallet": wallet.address, "update-hash": update_hash, "signature": signature})


def _num_classes(model, run_config) -> int:
    return task.model_spec(run_config).num_classes


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def _record_progress(node_config, server_round: int, loss: float, n: int) -> None:
    path = str(node_config.get("progress-path", "") or "")
    if not path:
        return
    line = {"round": server_round, "train-loss": _finite(loss), "num-examples": n, "time": time.time()}
    try:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")
    except OSError:
        pass  # progress is cosmetic


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    model = _model_from(msg, context)
    _, _, x, y = task.client_data(context.node_config, context.run_config)
    loss, acc = task.evaluate(model, x, y)
    metrics = MetricRecord({"eval-loss": loss, "eval-acc": acc, "num-examples": len(y)})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
