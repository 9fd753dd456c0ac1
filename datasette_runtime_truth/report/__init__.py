"""The cutover report: its figures, the checks judged from them, the cache that keeps
them until the store changes, and the Prometheus exposition."""
