"""What Meta sends and expects: webhook payload models and signature checks."""
