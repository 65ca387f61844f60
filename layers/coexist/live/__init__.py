"""The console's live channel, deployed: who is connected, what changed, and pushing it to them.

Local mode streams the same change events over Server-Sent Events (local/live.py); deployed, an API
Gateway WebSocket API carries them, fed from the keys-only DynamoDB streams of the chats and
messages tables. An event says only that something changed, never what: the console re-reads what
it shows through the API, with its own token and permissions.
"""
