"""RCS Business Messaging (Google RBM): the `[apps.rcs]` block, the RBM client, the connector and the
webhooks. docs/rcs.md says what is built and why."""
