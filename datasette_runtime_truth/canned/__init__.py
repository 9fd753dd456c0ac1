"""The canned queries, one source of truth, and the no-plugin bundle generated from them."""
