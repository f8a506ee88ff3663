"""The guest agent: stdlib-only Python that runs a plan inside the VM or on a host."""
