"""The staff's side of the portal: the liaison officers' inbox (admin penghubung) and the
coordinator's verification desk (admin koordinator).

| module | what it is |
| --- | --- |
| ``accounts`` | who may sign in: accounts, Argon2id password hashes, lock-out (pure) |
| ``stores`` | where accounts, sessions and sign-ins live (NATS buckets and a stream) |
| ``signin`` | a sign-in attempt, decided and recorded |
| ``pages`` | the pages and their forms |

Accounts are made with ``lapor accounts``, an operator's command like the others
(``lapor.ops.commands.accounts``).
"""
