"""Executing pipelines: the `Executor` interface, the local in-process executor and the case kinds it runs."""
