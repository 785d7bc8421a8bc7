"""kumoguard: the policy logic of the pack, importable without starting a gRPC server."""
