"""lapor.ops: what an operator runs against a deployment (the operations commands of lapor)."""
