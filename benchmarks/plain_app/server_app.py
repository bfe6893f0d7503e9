"""Stock FedAvg ServerApp with central evaluation: the benchmark's "no platform" baseline."""

import json
import time

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from training.flower_app import task

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    spec = task.model_spec(rc)
    model = spec.build()
    x_test, y_test = task.server_test_data(rc)
    history: list[dict] = []

    def central_eval(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        m = spec.build()
        m.load_state_dict(arrays.to_torch_state_dict())
        loss, acc = task.evaluate(m, x_test, y_test)
        history.append({"round": server_round, "accuracy": acc, "loss": loss, "t": time.time()})
        return MetricRecord({"accuracy": acc, "loss": loss})

    n = int(rc["min-nodes"])
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n, min_available_nodes=n)
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        train_config=ConfigRecord({"lr": float(rc["lr"])}),
        num_rounds=int(rc["num-server-rounds"]),
        evaluate_fn=central_eval,
    )
    if rc.get("result-path"):
        with open(str(rc["result-path"]), "w") as fh:
            json.dump({"history": history}, fh)
