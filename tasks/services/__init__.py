"""Write side of the task domain, one module per sub-domain; views, APIs, admin, jobs and the apps above call
these (`from tasks.services import X`), and nothing else writes a task's status or a ban.

- `lifecycle`: the status state machine, creator check, fail, delete a draft
- `creation`: the domain rules of a new task, its validation set and spec hash, `task_create`
- `registration`: createTask / cancel sent by the creator's wallet, confirmed from receipts and events
- `participation`: joining with a signed EIP-712 Join
- `identities`: wallets, DIDs and uniqueness credentials
- `bans`: banning and lifting, here and on chain

Reads are in `tasks.selectors`; row locks, in their one order, in `tasks.lock_objects`; what the apps above
react to (a join, a ban) in `tasks.signals`. Public services take keyword arguments only.
"""

from contracts.chain import ChainError
from tasks.models import COUNTED_PARTICIPATIONS
from tasks.services.bans import ban_create, ban_lift
from tasks.services.creation import (
    file_sha256,
    task_create,
    task_create_validate,
    task_spec_hash,
    validation_set_summary,
)
from tasks.services.errors import ChainConfirmationError, CredentialError, JoinRefused, TaskStateError
from tasks.services.identities import identity_for_wallet, identity_link_credential, pkh_did
from tasks.services.lifecycle import (
    ALLOWED_TRANSITIONS,
    CANCELLABLE,
    require_creator,
    task_delete,
    task_mark_failed,
    task_transition,
)
from tasks.services.participation import check_summary_against_spec, join_message, participation_join
from tasks.services.registration import (
    task_cancel_call,
    task_cancel_confirm,
    task_create_call,
    task_registration_abandon,
    task_registration_confirm,
    task_registration_start,
    task_sync_chain_events,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "CANCELLABLE",
    "COUNTED_PARTICIPATIONS",
    "ChainConfirmationError",
    "ChainError",
    "CredentialError",
    "JoinRefused",
    "TaskStateError",
    "ban_create",
    "ban_lift",
    "check_summary_against_spec",
    "file_sha256",
    "identity_for_wallet",
    "identity_link_credential",
    "join_message",
    "participation_join",
    "pkh_did",
    "require_creator",
    "task_cancel_call",
    "task_cancel_confirm",
    "task_create",
    "task_create_call",
    "task_create_validate",
    "task_delete",
    "task_mark_failed",
    "task_registration_abandon",
    "task_registration_confirm",
    "task_registration_start",
    "task_spec_hash",
    "task_sync_chain_events",
    "task_transition",
    "validation_set_summary",
]
