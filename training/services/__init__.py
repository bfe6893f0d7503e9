"""Write side of training, by sub-domain; this package re-exports the public services for callers.

- `nodes`: SuperNode key registration with the SuperLink (join, ban, SuperLink restart);
- `runs`: start training, launch Flower runs (leased), resume or fail;
- `rounds`: ingest the ServerApp's round records (Round/Update rows, Merkle root, commitRound);
- `follow`: the run follower (status, heartbeat, resume, hand over to finalization);
- `finalize` + `final_steps`: the resumable finalization chain (final model, contributions, completed);
- `watchdog`: restart job chains whose lease ran out;
- `common`: TrainingError, settings, the SuperLink handle, job sends by name.

Reads live in `training.selectors`; the pure audit-trail pieces (leaves, roots, checkpoint hashing) in
`training.trail`; row locks and their order in `training.lock_objects`.
"""

# `services.Run`: tests/training/services/test_create_task.py (outside this change) reads the model from here.
from training.models import Run
from training.services.common import TrainingError, enqueue, superlink
from training.services.final_steps import FinalizeError
from training.services.finalize import (
    FINALIZE_STEPS,
    FinalizeOutcome,
    finalize_advance,
    finalize_claim,
    finalize_fail,
    finalize_watchdog,
    task_finalize,
    training_finished,
)
from training.services.follow import heartbeat_age, serverapp_error, training_follow, training_run_follow_step
from training.services.nodes import (
    node_register,
    node_registration_request,
    node_unregister_identity,
    node_unregister_request,
    nodes_reregister_all,
    openssh_public_key,
)
from training.services.rounds import commit_key, read_records, round_ingest, run_ingest
from training.services.runs import (
    build_run_config,
    follower_claim,
    new_follower_token,
    run_dir_of,
    task_fail,
    training_maybe_start,
    training_run_launch,
    training_run_start,
)
from training.services.watchdog import training_watchdog

__all__ = [
    "FINALIZE_STEPS",
    "FinalizeError",
    "FinalizeOutcome",
    "Run",
    "TrainingError",
    "build_run_config",
    "commit_key",
    "enqueue",
    "finalize_advance",
    "finalize_claim",
    "finalize_fail",
    "finalize_watchdog",
    "follower_claim",
    "heartbeat_age",
    "new_follower_token",
    "node_register",
    "node_registration_request",
    "node_unregister_identity",
    "node_unregister_request",
    "nodes_reregister_all",
    "openssh_public_key",
    "read_records",
    "round_ingest",
    "run_dir_of",
    "run_ingest",
    "serverapp_error",
    "superlink",
    "task_fail",
    "task_finalize",
    "training_finished",
    "training_follow",
    "training_maybe_start",
    "training_run_follow_step",
    "training_run_launch",
    "training_run_start",
    "training_watchdog",
]
