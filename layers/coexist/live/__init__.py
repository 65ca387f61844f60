"""The console's live channel, deployed: who is connected, what changed, and pushing it to them.

Deployed, an API Gateway WebSocket API carries the change events, fed from the keys-only DynamoDB
streams of the chats and messages tables; local mode serves the same protocol with the same code
(local/live.py). An event says only that something changed, never what, and reaches only the
consoles whose person may see the changed record's number: the console re-reads what it shows
through the API, with its own token and permissions.
"""
