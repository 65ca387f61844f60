"""How long one send can take at worst, and so how long the sender function may run.

A send whose function times out in the middle of the call to Meta has an unknown outcome (Meta may
have the message). The sender only starts a send while the function has at least the worst case
left, and its timeout is derived from the same figures, so in the ordinary course a send always
finishes; `outbound.sender` decides what an interrupted one means.

Plain numbers only: the CDK app and the handlers both import this module.
"""

from __future__ import annotations

import math

# A slot for the number and one for the customer, each waited for in process up to this long;
# a longer wait goes back to the queue instead of holding the function.
MAX_INLINE_WAIT_S = 2.0
# The call to Meta (Graph API or End User Messaging Social): one attempt, never retried by the
# client itself (a retried POST can send the message twice).
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 8.0
# The store's reads and writes around the call (the message, the buckets, marking it `sending`,
# recording Meta's answer), at their ordinary latency.
BOOKKEEPING_S = 3.0

SEND_WORST_CASE_S = 2 * MAX_INLINE_WAIT_S + CONNECT_TIMEOUT_S + READ_TIMEOUT_S + BOOKKEEPING_S
# Room for two sends in a row at their worst; the sender's batches hold up to ten messages, of
# different customers in parallel, and what does not fit comes back on the queue at once.
SENDER_TIMEOUT_S = 2 * math.ceil(SEND_WORST_CASE_S)
