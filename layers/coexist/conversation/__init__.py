"""Conversations: the bot first, then a human, orchestrated by the Step Functions workflow in
statemachine/conversation.asl.json. `steps` is what the workflow's tasks do; `signals` is how
ingest and the agent API wake it."""
