"""Batches: many plan items over GPU leases, with retries, resume and a live progress view.

`dispatch.Dispatcher` is the one scheduling loop; `local.LocalBackend` runs it over threads on
this host (a Ray backend will run it over Ray tasks); `simulate.SimBackend` over virtual time.
"""
