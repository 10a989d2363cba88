"""Batches: many plan items over GPU leases, with retries, resume and a live progress view.

`dispatch.Dispatcher` is the one scheduling loop; `local.LocalBackend` runs it over threads on
this host, `ray_backend.RayBackend` over Ray tasks on a cluster's GPU nodes (the driver keeps
the journals; artifacts come back as archives), `simulate.SimBackend` over virtual time. The
default run_item is the one-commit pipeline (`commit_item.commit_run_item`).
"""
