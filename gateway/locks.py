"""The advisory lock ids the gateway takes, named once.

Advisory locks share one id space per database with every other application that
uses them, so the gateway's are spelled out here, distinct, and documented with who
takes them. The SQL files cannot import them: where SQL takes a lock it writes the
number, and tests/test_shared_facts.py proves each number there is the one named here
(by reading the files, and by taking the lock from Python and watching the SQL yield).
"""

from __future__ import annotations

# The wake lock: a sleeping listener holds it exclusively (session-level) and writers
# that can take it shared skip NOTIFY (triggers.sql, gateway.notify_statements();
# gateway.wake, gateway.listener).
WAKE_LOCK = 1735549286
# One gateway.prune() at a time (schema.sql, transaction-level; gateway.retention).
PRUNE_LOCK = 1735549285
# Gateways that start at once apply the schema in turns (gateway.db.apply_schema,
# transaction-level). 0x67617465 is "gate".
APPLY_LOCK = 0x6761_7465
