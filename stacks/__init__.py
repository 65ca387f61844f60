"""Coexist's AWS CDK app: one stack per deployable concern, reusable pieces in `constructs/`."""
