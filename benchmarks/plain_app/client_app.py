"""Stock ClientApp: the same local training as training/flower_app, without signatures or attacks."""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from training.flower_app import task

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    rc, nc = context.run_config, context.node_config
    server_round = int(msg.content["config"].get("server-round", 0)) if "config" in msg.content else 0
    seed = task.cfg(rc, "seed") + 1000 * server_round + int(nc.get("partition-id", 0))
    task.seed_everything(seed)
    model = task.model_spec(rc).build()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict(), strict=True)
    x, y, _, _ = task.client_data(nc, rc)
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
