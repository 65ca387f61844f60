"""Repositories: the only code that knows how Coexist's entities are laid out in DynamoDB and S3."""
