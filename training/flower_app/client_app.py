"""BCFL ClientApp: trains the global model on this SuperNode's own data.

Node config (``flower-supernode --node-config``): ``data-path`` (the participant's own
.npz/.csv) or ``partition-id`` + ``num-partitions`` (+ optional ``dataset``) for a bundled
dataset. Hyper-parameters come from the run config (see ``task.DEFAULTS``).
"""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

if __package__:  # imported from the repository as training.flower_app.client_app
    from . import task
else:  # loaded by Flower from the unpacked app bundle, where task.py sits next to this file
    import task  # type: ignore[no-redef]

app = ClientApp()


def _model_from(msg: Message, context: Context):
    spec = task.model_spec(context.run_config)
    model = spec.build()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict(), strict=True)
    return model


@app.train()
def train(msg: Message, context: Context) -> Message:
    rc = context.run_config
    server_round = int(msg.content["config"].get("server-round", 0)) if "config" in msg.content else 0
    seed = task.cfg(rc, "seed") + 1000 * server_round + int(context.node_config.get("partition-id", 0))
    task.seed_everything(seed)
    model = _model_from(msg, context)
    x, y, _, _ = task.client_data(context.node_config, rc)
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
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord({"train-loss": loss, "num-examples": len(y)}),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    model = _model_from(msg, context)
    _, _, x, y = task.client_data(context.node_config, context.run_config)
    loss, acc = task.evaluate(model, x, y)
    metrics = MetricRecord({"eval-loss": loss, "eval-acc": acc, "num-examples": len(y)})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
