"""One-time reminders: scheduled (EventBridge Scheduler), sent through the outbound path, answered
by the customer's buttons (docs: README, Reminders)."""
