"""The IAM contract: every AWS call a function makes in the suites is one its deployed role allows."""
