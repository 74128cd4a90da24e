"""Dynamic batching: the pure decision core (queues, cost model, policy) the scheduler runs."""
